/**
 * Opens a Kura for tests on a catalog backend: SQLite in a temp dir, or PostgreSQL in a fresh
 * database of the test server. Blob store: fs in the same temp dir.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kura, type KuraOpenOptions } from "../../src/kura.js";

export interface TestKuraFactory {
  name: string;
  /** Open (or re-open, for the same dir/database) a Kura. */
  open(options?: KuraOpenOptions & { config?: Record<string, unknown> }): Promise<Kura>;
  dir: string;
  cleanup(): Promise<void>;
}

export type DatabaseProvider = () => Promise<{ url: string; drop(): Promise<void> } | undefined>;

export async function testKura(
  backend: "sqlite" | "postgres",
  database?: DatabaseProvider,
): Promise<TestKuraFactory> {
  const dir = await mkdtemp(join(tmpdir(), `kura-${backend}-`));
  const pg = backend === "postgres" && database ? await database() : undefined;
  const dbConfig =
    backend === "sqlite"
      ? { backend: "sqlite", path: join(dir, "kura.db") }
      : { backend: "postgres", url: pg?.url };
  return {
    name: backend,
    dir,
    open: (options = {}) => {
      const { config, ...rest } = options;
      return Kura.open({ data_dir: dir, database: dbConfig, ...(config ?? {}) }, rest);
    },
    cleanup: async () => {
      await pg?.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
