/**
 * Child process of the usage crash test: a mixed workload for two tenants on SQLite + fs until
 * it is killed — appends (single, batches, some with a 1 s TTL), edits, soft deletes, purges,
 * erases (often of a message being edited at the same moment), object puts that replace and
 * delete, writes refused by the tier's limits, and maintenance runs (expiry, usage folding).
 * Prints `READY`, then `OP <name>` per acknowledged operation. Any error other than the ones a
 * race or a limit explains is printed to stderr and ends the process (the parent then fails).
 */
import { isKuraError } from "../../src/core/errors.js";
import { Kura } from "../../src/kura.js";
import { USAGE_TEST_CONFIG } from "./usage-config.js";

const [dataDir, trialArg] = process.argv.slice(2) as [string, string];
const trial = Number(trialArg);
const kura = await Kura.open({ data_dir: dataDir, ...USAGE_TEST_CONFIG });
const tenants = ["acme", "beta"].map((id) => kura.tenant(id));

let seed = trial * 7919 + 1;
const rnd = () => {
  seed = (Math.imul(seed ^ (seed >>> 15), 2246822519) + 0x9e3779b9) | 0;
  return (seed >>> 0) / 2 ** 32;
};
const int = (n: number) => Math.floor(rnd() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;

/** Recently appended message ids per tenant: edits and erases pick from the same few. */
const recent = tenants.map(() => [] as string[]);
const EXPECTED = new Set([
  "MESSAGE_NOT_FOUND",
  "CATALOG_STALE_VERSION",
  "PAYLOAD_TOO_LARGE",
  "QUOTA_EXCEEDED",
  "CATALOG_STALE_OBJECT",
  "OBJECT_NOT_FOUND",
  "CONDITION_FAILED_CONCURRENT",
  // An edit that lost to an erase of its message (the catalog finds no message to add to).
  "CATALOG_NOT_FOUND",
]);

const ok = (name: string) => process.stdout.write(`OP ${name}\n`);

async function guarded(name: string, f: () => Promise<unknown>): Promise<void> {
  try {
    await f();
    ok(name);
  } catch (e) {
    if (isKuraError(e) && EXPECTED.has(e.code)) {
      ok(`${name}:${e.code}`);
      return;
    }
    process.stderr.write(`${name} failed: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  }
}

const text = (n: number) => `trial ${trial} ${"lorem ipsum ".repeat(n)}`;

async function worker(w: number): Promise<void> {
  for (;;) {
    const ti = int(tenants.length);
    const t = tenants[ti] as (typeof tenants)[number];
    const hot = recent[ti] as string[];
    const roll = int(100);
    if (roll < 18) {
      await guarded("append", async () => {
        const ref = await t.messages.append(`chat-${w % 3}`, {
          role: "user",
          content: text(1 + int(40)),
          ...(rnd() < 0.15 ? { ttlSeconds: 1 } : {}),
        });
        hot.push(ref.id);
      });
    } else if (roll < 26) {
      await guarded("batch", async () => {
        const refs = await t.messages.appendMany(
          "chat-batch",
          Array.from({ length: 1 + int(8) }, () => ({ role: "assistant", content: text(1 + int(20)) })),
        );
        hot.push(...refs.map((r) => r.id));
      });
    } else if (roll < 44 && hot.length > 0) {
      const id = pick(hot.slice(-6));
      await guarded("edit", () => t.messages.edit(id, text(1 + int(60))));
    } else if (roll < 54 && hot.length > 0) {
      const id = pick(hot.slice(-6));
      await guarded("erase", () => t.messages.erase(id));
    } else if (roll < 60 && hot.length > 0) {
      const id = pick(hot);
      await guarded("delete", () => t.messages.delete(id));
    } else if (roll < 62) {
      await guarded("purge", () => t.messages.purge({ olderThanDays: 0 }));
    } else if (roll < 76) {
      const key = `k/${int(6)}`;
      await guarded("object.put", () =>
        t.objects.put(key, Buffer.alloc(1 + int(6000), 97 + w), { contentType: "application/octet-stream" }),
      );
    } else if (roll < 84) {
      await guarded("object.delete", () => t.objects.delete(`k/${int(6)}`));
    } else if (roll < 89) {
      // Above max_message_bytes or max_object_bytes: refused before anything is written.
      await guarded("refused", () =>
        rnd() < 0.5
          ? t.messages.append("chat-big", { role: "user", content: "x".repeat(5000) })
          : t.objects.put(`big/${int(3)}`, Buffer.alloc(20_000), {}),
      );
    } else if (roll < 91) {
      await guarded("jobs", () => kura.runJobs(Date.now() + 5_000));
    } else if (hot.length > 200) {
      hot.splice(0, hot.length - 100);
    }
  }
}

process.stdout.write("READY\n");
await Promise.all([0, 1, 2, 3, 4, 5].map(worker));
