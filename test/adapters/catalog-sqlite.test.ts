/**
 * What the SQLite catalog does beyond the port's contract: its options, its directory, a locked or
 * unopenable database, and the catalog registry.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { LATEST_VERSION } from "../../src/adapters/catalog/migrations.js";
import { catalogDefinition } from "../../src/adapters/catalog/registry.js";
import { openSqliteCatalog, sqliteCatalog } from "../../src/adapters/catalog/sqlite/index.js";
import { isKuraError } from "../../src/core/errors.js";

describe("SQLite specifics", () => {
  const dir = mkdtempSync(join(tmpdir(), "kura-catalog-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("options: defaults, `:memory:`, the config section as it is, unknown keys rejected", async () => {
    expect(sqliteCatalog.parseOptions({})).toEqual({ path: "./data/kura.db", busy_timeout_ms: 5000 });
    expect(sqliteCatalog.parseOptions({ backend: "sqlite", path: "/x.db" }).path).toBe("/x.db");
    expect(() => sqliteCatalog.parseOptions({ file: "x" })).toThrow(/database.file: unknown key/);
    const c = await sqliteCatalog.create(sqliteCatalog.parseOptions({ path: ":memory:" }));
    expect(await c.schemaVersion()).toBe(LATEST_VERSION);
    const [outcome] = await c.commit([{ ops: [{ op: "ensureTenant", tenantId: "t", at: 1 }] }]);
    expect(outcome).toEqual({ ok: true });
    await c.close();
  });

  it("creates the database's directory", async () => {
    const c = await sqliteCatalog.create(
      sqliteCatalog.parseOptions({ path: join(dir, "a", "b", "kura.db") }),
    );
    await c.ping();
    await c.close();
  });

  it("a database locked by another connection is CATALOG_UNAVAILABLE (retryable) after busy_timeout_ms", async () => {
    const path = join(dir, "locked.db");
    const c = await openSqliteCatalog(sqliteCatalog.parseOptions({ path, busy_timeout_ms: 50 }));
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    try {
      const outcomes = await c.commit([
        { ops: [{ op: "ensureTenant", tenantId: "t", at: 1 }] },
        { ops: [{ op: "ensureTenant", tenantId: "u", at: 1 }] },
      ]);
      for (const o of outcomes) {
        expect(o.ok).toBe(false);
        if (!o.ok) {
          expect(o.error.code).toBe("CATALOG_UNAVAILABLE");
          expect(o.error.retryable).toBe(true);
        }
      }
      await expect(
        openSqliteCatalog(sqliteCatalog.parseOptions({ path, busy_timeout_ms: 50 })),
      ).rejects.toSatisfy((e) => isKuraError(e) && e.code === "CATALOG_UNAVAILABLE");
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
    const [outcome] = await c.commit([{ ops: [{ op: "ensureTenant", tenantId: "t", at: 1 }] }]);
    expect(outcome).toEqual({ ok: true });
    await c.close();
  });

  it("a path that cannot be opened is CATALOG_UNAVAILABLE", async () => {
    // Its directory would have to be inside a regular file.
    writeFileSync(join(dir, "plain-file"), "x");
    const path = join(dir, "plain-file", "kura.db");
    await expect(sqliteCatalog.create(sqliteCatalog.parseOptions({ path }))).rejects.toSatisfy(
      (e) => isKuraError(e) && e.code === "CATALOG_UNAVAILABLE",
    );
  });

  it("the registry loads both definitions and refuses unknown backends", async () => {
    expect((await catalogDefinition("sqlite")).dialect).toBe("sqlite");
    expect((await catalogDefinition("postgres")).dialect).toBe("postgres");
    await expect(catalogDefinition("oracle")).rejects.toSatisfy(
      (e) => isKuraError(e) && e.code === "CONFIG_INVALID",
    );
  });
});
