/**
 * `kura nodes list | forget` (DIST-1) on a PostgreSQL catalog: the command lists the nodes that
 * registered (without registering itself), refuses to forget a live node (NODE_LIVE, exit 75)
 * or an unknown one (NODE_NOT_FOUND, exit 66), and forgets a stopped one with its cursors.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kura } from "../../src/kura.js";
import { backendAvailable } from "../support/backends.js";
import { postgresForTests } from "../support/servers/postgres.js";

const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");
const run = promisify(execFile);

const db = await postgresForTests();
const available = backendAvailable("cli-nodes-postgres", "problem" in db ? db.problem : undefined);

describe.skipIf(!available)("kura nodes", () => {
  let cwd: string;
  let configFile: string;
  const url = "url" in db ? db.url : "";
  const cli = (args: string[]) =>
    run(process.execPath, ["--import", TSX, MAIN, "nodes", ...args, "-c", configFile], {
      cwd,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
    });
  const failure = async (args: string[]) => {
    const e = (await cli(args).then(
      () => undefined,
      (err: unknown) => err,
    )) as { code?: number; stderr?: string } | undefined;
    return { code: e?.code, stderr: e?.stderr ?? "" };
  };

  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), "kura-cli-nodes-"));
    configFile = join(cwd, "kura.yaml");
    await writeFile(
      configFile,
      [`data_dir: ${join(cwd, "cli")}`, "database:", "  backend: postgres", `  url: ${url}`, ""].join("\n"),
    );
  });
  afterAll(async () => {
    if ("destroy" in db) await db.destroy();
    await rm(cwd, { recursive: true, force: true });
  });

  it("lists the registered nodes, refuses a live or unknown one, forgets a stopped one", {
    timeout: 120_000,
  }, async () => {
    const config = { data_dir: join(cwd, "a"), database: { backend: "postgres", url } };
    const a = await Kura.open(config);
    const id = a.nodeId as string;
    try {
      const listed = JSON.parse((await cli(["list", "--json"])).stdout) as {
        nodes: { id: string; live: boolean; consumers: string[] }[];
      };
      // The command itself visits: only the node is listed.
      expect(listed.nodes).toEqual([
        expect.objectContaining({ id, live: true, consumers: [`search@${id}`] }),
      ]);
      const live = await failure(["forget", id]);
      expect(live.code).toBe(75);
      expect(live.stderr).toContain("NODE_LIVE");
    } finally {
      await a.close();
    }
    const unknown = await failure(["forget", "no-such-node"]);
    expect(unknown.code).toBe(66);
    expect(unknown.stderr).toContain("NODE_NOT_FOUND");
    expect((await cli(["list"])).stdout).toMatch(new RegExp(`${id}\\s.*\\sno\\s+search@${id}`));
    expect((await cli(["forget", id])).stdout).toContain(`forgot node ${id}`);
    expect(JSON.parse((await cli(["list", "--json"])).stdout)).toEqual({ nodes: [] });
  });
});
