/**
 * What encryption at rest (SEC-2) costs, on embedded defaults (SQLite + fs + LMDB + FTS5): the
 * same work on a Kura with an `encryption` section and on one without, in one run, in
 * alternating rounds (each keeps its best round, so a burst of load elsewhere does not decide a
 * ratio). The baseline is Kura without encryption; ratio = encrypted ÷ plain for throughputs
 * (below 1 = encryption costs that much):
 *   - append: single messages, 16 writers;
 *   - cold get: `messages.get` without caches (row, body decrypted and verified);
 *   - search: a one-word full-text query (blind tokens; snippets from decrypted bodies).
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { LruCache } from "../../src/engine/lru-cache.js";
import { Kura } from "../../src/kura.js";
import { type BenchContext, ratioOf, type Scenario, throughput } from "../lib.js";

const WORDS = ["ledger", "harbor", "quartz", "meadow", "signal", "copper", "lantern", "orchid"];
const text = (i: number) =>
  `message ${i}: ${WORDS[i % WORDS.length]} ${"the quick brown fox jumps over the lazy dog ".repeat(5)} 東京の会議`;

export const encryption: Scenario = {
  name: "encryption",
  async run(ctx: BenchContext) {
    const nAppend = ctx.quick ? 2_000 : 10_000;
    const nGet = ctx.quick ? 5_000 : 30_000;
    const nSearch = ctx.quick ? 300 : 2_000;
    const rounds = 3;
    const master = randomBytes(32).toString("base64");
    const configs = {
      plain: { data_dir: join(ctx.dir, "plain") },
      encrypted: { data_dir: join(ctx.dir, "encrypted"), encryption: { master_key: master } },
    };
    const best = { plain: { append: 0, get: 0, search: 0 }, encrypted: { append: 0, get: 0, search: 0 } };
    for (let round = 0; round < rounds; round++) {
      for (const mode of ["plain", "encrypted"] as const) {
        // Inline projectors on both sides: with encryption they always are.
        const kura = await Kura.open(configs[mode], { projectors: "inline" });
        const t = kura.tenant("bench");
        const ids: string[] = [];
        const append = await throughput(nAppend, 16, async (i) => {
          const ref = await t.messages.append(`chat-${i % 20}`, { role: "user", content: text(i) });
          ids.push(ref.id);
        });
        await kura.pumpOutbox();
        await kura.close();
        const cold = await Kura.open(configs[mode], { projectors: "inline", cache: new LruCache(0) });
        const ct = cold.tenant("bench");
        const get = await throughput(nGet, 16, (i) =>
          ct.messages.get(ids[(i * 7919) % ids.length] as string),
        );
        const search = await throughput(nSearch, 4, (i) =>
          ct.search(WORDS[i % WORDS.length] as string, { limit: 10 }),
        );
        await cold.close();
        const b = best[mode];
        b.append = Math.max(b.append, append);
        b.get = Math.max(b.get, get);
        b.search = Math.max(b.search, search);
      }
    }
    const s = "encryption at rest (SQLite + fs + LMDB)";
    const metrics = [
      ["append (16 writers)", "append"],
      ["cold get (no cache, 16 readers)", "get"],
      ["full-text search, one word (4 readers)", "search"],
    ] as const;
    for (const [metric, key] of metrics) {
      ctx.log(
        `${metric}: ${Math.round(best.encrypted[key])}/s encrypted, ${Math.round(best.plain[key])}/s plain`,
      );
      ctx.record({
        scenario: s,
        metric,
        value: best.encrypted[key],
        unit: "ops/s",
        baseline: "the same Kura without encryption",
        baseline_value: best.plain[key],
        ratio: ratioOf(best.encrypted[key], best.plain[key]),
      });
    }
  },
};
