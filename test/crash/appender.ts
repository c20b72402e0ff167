/**
 * Child process of the crash test: appends forever (single appends from several concurrent
 * callers, and batches), printing one line per acknowledged message: `ACK <id> <sha256>`.
 * The parent kills it with SIGKILL at a random moment.
 */
import { createHash } from "node:crypto";
import { Kura } from "../../src/kura.js";

const [dataDir, trial] = process.argv.slice(2) as [string, string];
const kura = await Kura.open({ data_dir: dataDir, durability: process.env.KURA_DURABILITY ?? "os" });
const t = kura.tenant("crash");
let n = 0;
const content = () => `trial ${trial} message ${n++} ${"lorem ipsum ".repeat(n % 40)}`;
const ack = (id: string, text: string) =>
  process.stdout.write(`ACK ${id} ${createHash("sha256").update(text).digest("hex")}\n`);

async function singles(worker: number): Promise<void> {
  for (;;) {
    const text = content();
    const ref = await t.messages.append(`chat-${worker % 3}`, { role: "user", content: text });
    ack(ref.id, text);
  }
}

async function batches(): Promise<void> {
  for (;;) {
    const texts = Array.from({ length: 1 + (n % 25) }, content);
    const refs = await t.messages.appendMany(
      "chat-batch",
      texts.map((c) => ({ role: "assistant", content: c })),
    );
    for (const [i, r] of refs.entries()) ack(r.id, texts[i] as string);
  }
}

process.stdout.write("READY\n");
await Promise.all([singles(0), singles(1), singles(2), singles(3), batches()]);
