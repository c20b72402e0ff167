import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openSqliteFts } from "../../src/adapters/search/sqlite-fts/index.js";
import { isKuraError } from "../../src/core/errors.js";
import { searchIndexConformance } from "./search-index.suite.js";

const dir = mkdtempSync(join(tmpdir(), "kura-fts-"));

searchIndexConformance("sqlite-fts", {
  open: () => openSqliteFts({ path: join(dir, "search.db") }),
  cleanup: async () => rmSync(dir, { recursive: true, force: true }),
});

describe("sqlite-fts specifics", () => {
  it("a database that cannot be opened is SEARCH_UNAVAILABLE", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "kura-fts-")), "a-file");
    writeFileSync(file, "not a directory");
    await expect(openSqliteFts({ path: join(file, "search.db") })).rejects.toSatisfy(
      (e: unknown) => isKuraError(e) && e.code === "SEARCH_UNAVAILABLE" && e.kind === "Unavailable",
    );
  });

  it("persists across reopen and clear empties it", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "kura-fts-")), "s.db");
    const a = await openSqliteFts({ path });
    await a.upsert([{ tenantId: "t", id: "x", chatId: "c", role: "user", createdAt: 1, text: "永続 data" }]);
    await a.close();
    const b = await openSqliteFts({ path });
    expect((await b.search({ tenantId: "t", q: "永続", limit: 5 })).hits.map((h) => h.id)).toEqual(["x"]);
    await b.clear();
    expect(await b.count()).toBe(0);
    await b.close();
  });
});
