/**
 * The shell examples of README.md and docs/http.md, run as written against a live `kura serve`,
 * so the documents cannot drift from the server.
 *
 * Which blocks run and how they are marked: test/support/markdown-examples.ts. Each document gets
 * its own server: `kura serve --port <a free port>` in an empty temp directory, no configuration
 * and no KURA_* environment (embedded defaults), exactly as a reader starts it. Its runnable
 * blocks then run in document order with `bash -Eeuo pipefail`, from that directory:
 * - the shell variables a block sets (TOKEN, K, H, ID, …) carry over to the next block;
 * - `127.0.0.1:8787` (the documented address) becomes the server's address;
 * - first on PATH: `curl`, which adds `--fail-with-body -sS`, so a 4xx/5xx answer fails the block
 *   with the command and the response body in the message; `kura` and `npx kura`, which run this
 *   checkout's CLI (any other `npx`, and `npm`, fail);
 * - `report.pdf` and `upload.png`, the local files the examples upload, are made there first.
 * A block must exit 0; a documented output is compared by shape with what the block printed.
 *
 * Needs bash, curl and jq (the examples use jq to pick fields out of answers): when one is
 * missing the examples are skipped with a message, except in CI (CI=true), where that fails.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IN_CI } from "../support/backends.js";
import {
  parseShellExamples,
  type ShellExample,
  shapeDifferences,
  splitJsonValues,
} from "../support/markdown-examples.js";

const ROOT = resolve(import.meta.dirname, "../..");
const DOCUMENTS = ["README.md", "docs/http.md"];
const MAIN = join(ROOT, "src/cli/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");
const DOCUMENTED_ADDRESS = /\b(?:127\.0\.0\.1|localhost):8787\b/g;
const BLOCK_TIMEOUT_MS = 90_000;

function findTool(name: string): string | undefined {
  const r = spawnSync("bash", ["-c", `command -v ${name}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const tools = { bash: findTool("bash"), curl: findTool("curl"), jq: findTool("jq") };
const missing = Object.entries(tools)
  .filter(([, path]) => path === undefined)
  .map(([name]) => name);
if (missing.length > 0) {
  const message = `docs examples need ${missing.join(", ")} on PATH (apt-get install ${missing.join(" ")})`;
  if (IN_CI) throw new Error(message);
  process.stderr.write(`\n!!!! SKIPPED the README.md and docs/http.md examples: ${message} !!!!\n\n`);
}

/** `curl` as the examples run here: quiet, and an error status fails with its body on stderr. */
const CURL_WRAPPER = `#!/usr/bin/env bash
set -o pipefail
body=$(mktemp)
"$KURA_REAL_CURL" --fail-with-body -sS "$@" | tee "$body"
rc=\${PIPESTATUS[0]}
if (( rc != 0 )); then
  {
    printf 'curl'; printf ' %q' "$@"
    printf '\\n  → exit %d; the response body:\\n' "$rc"
    head -c 4000 "$body"; echo
  } | sed -E 's/eyJ[A-Za-z0-9_-]*\\.[A-Za-z0-9_-]*\\.[A-Za-z0-9_-]*/<token>/g' >&2
fi
rm -f "$body"
exit "$rc"
`;

const KURA_WRAPPER = `#!/usr/bin/env bash
exec "$KURA_TEST_NODE_BIN" --import "$KURA_TSX" "$KURA_MAIN" "$@"
`;

/** Blocks that install or start things must be marked skip, not run by accident. */
const NPM_WRAPPER = `#!/usr/bin/env bash
echo "npm \${1-}: not run in the documented examples (mark the block \\\`example: skip (why)\\\`)" >&2
exit 127
`;

const NPX_WRAPPER = `#!/usr/bin/env bash
if [[ "\${1-}" == kura ]]; then shift; exec kura "$@"; fi
echo "npx \${1-}: only \\\`npx kura\\\` runs in the documented examples" >&2
exit 127
`;

/** Runs before a block: the state of the blocks before it, and where a failure happened. */
function prelude(example: ShellExample, prologueLines: number): string {
  const offset = example.line - prologueLines;
  return [
    "set -Eeuo pipefail",
    "__kura_vars=$(compgen -v | sort)",
    'if [[ -f "$KURA_EXAMPLE_STATE" ]]; then source "$KURA_EXAMPLE_STATE"; fi',
    `trap 'echo "${example.file}:$((LINENO + ${offset})): exit $? from: $BASH_COMMAND" >&2' ERR`,
    "__kura_save() {",
    "  local __kura_v",
    '  for __kura_v in $(comm -13 <(printf "%s\\n" "$__kura_vars") <(compgen -v | sort)); do',
    '    [[ $__kura_v == __kura_* || $__kura_v == BASH_* ]] || declare -p "$__kura_v"',
    '  done > "$KURA_EXAMPLE_STATE"',
    "}",
  ].join("\n");
}
const PROLOGUE_LINES = prelude({ file: "", line: 0, language: "sh", code: "" }, 0).split("\n").length;

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const address = s.address();
      const port = typeof address === "object" && address ? address.port : 0;
      s.close(() => resolvePort(port));
    });
  });
}

/** One reader's session: a server in an empty directory, and the shell state of the blocks. */
class Session {
  dir = "";
  bin = "";
  port = 0;
  private child: ChildProcess | undefined;
  private serverEnv: Record<string, string> = {};
  serverLog = "";
  failed: string | undefined;

  async open(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), "kura-docs-examples-"));
    this.bin = await mkdtemp(join(tmpdir(), "kura-docs-examples-bin-"));
    for (const [name, text] of [
      ["curl", CURL_WRAPPER],
      ["kura", KURA_WRAPPER],
      ["npx", NPX_WRAPPER],
      ["npm", NPM_WRAPPER],
    ] as const) {
      await writeFile(join(this.bin, name), text);
      await chmod(join(this.bin, name), 0o755);
    }
    await writeFile(join(this.dir, "report.pdf"), "%PDF-1.4\n% a small report\n%%EOF\n");
    await writeFile(join(this.dir, "upload.png"), Buffer.from("89504e470d0a1a0a", "hex"));
    this.port = await freePort();
    await this.startServer();
  }

  /** The environment of the server and the blocks: a fresh user's, with nothing of Kura's. */
  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      PATH: `${this.bin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      HOME: this.dir, // no ~/.curlrc
      LANG: "C.UTF-8",
      KURA_REAL_CURL: tools.curl as string,
      KURA_TEST_NODE_BIN: process.execPath,
      KURA_TSX: TSX,
      KURA_MAIN: MAIN,
      KURA_EXAMPLE_STATE: join(this.bin, "state.sh"),
      ...extra,
    };
  }

  async startServer(): Promise<void> {
    const child = spawn(process.execPath, ["--import", TSX, MAIN, "serve", "--port", String(this.port)], {
      cwd: this.dir,
      env: this.env(this.serverEnv),
    });
    this.child = child;
    let stderr = "";
    await new Promise<void>((ready, reject) => {
      const timer = setTimeout(() => reject(new Error(`kura serve did not start: ${stderr}`)), 60_000);
      child.stdout?.resume();
      child.stderr?.on("data", (c) => {
        stderr += c;
        if (/listening on http:\/\/\S+/.test(stderr) && stderr.includes("API docs")) {
          clearTimeout(timer);
          ready();
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`kura serve exited ${code}: ${stderr}`));
      });
    });
    this.serverLog += stderr;
  }

  async stopServer(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
  }

  async restartServer(extra: Record<string, string>): Promise<void> {
    await this.stopServer();
    this.serverEnv = { ...this.serverEnv, ...extra };
    await this.startServer();
  }

  async close(): Promise<void> {
    await this.stopServer();
    await rm(this.dir, { recursive: true, force: true });
    await rm(this.bin, { recursive: true, force: true });
  }

  /** Runs one block; resolves with what it printed, rejects with a message naming the failure. */
  async run(example: ShellExample): Promise<string> {
    const code = example.code.replace(DOCUMENTED_ADDRESS, `127.0.0.1:${this.port}`);
    const script = `${prelude(example, PROLOGUE_LINES)}\n${code}__kura_save\n`;
    const path = join(this.bin, `block-${example.line}.sh`);
    await writeFile(path, script);
    const child = spawn(tools.bash as string, [path], { cwd: this.dir, env: this.env() });
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c) => {
      err += c;
    });
    const status = await new Promise<number | string>((done) => {
      const timer = setTimeout(() => child.kill("SIGKILL"), BLOCK_TIMEOUT_MS);
      child.once("close", (exitCode, signal) => {
        clearTimeout(timer);
        done(exitCode ?? `signal ${signal}`);
      });
    });
    const stdout = Buffer.concat(out).toString("utf8");
    if (status !== 0) {
      throw new Error(
        `${example.file}:${example.line}: the block exited ${status}\n${err.trim()}\n--- what it printed:\n${stdout.slice(-1500)}`,
      );
    }
    return stdout;
  }
}

function title(example: ShellExample): string {
  const first =
    example.code
      .split("\n")
      .map((l) => l.trim())
      .find((l) => l !== "" && !l.startsWith("#")) ?? "";
  return `${example.file}:${example.line} ${first.length > 60 ? `${first.slice(0, 59)}…` : first}`;
}

const parsed = await Promise.all(
  DOCUMENTS.map(async (file) => parseShellExamples(file, await readFile(join(ROOT, file), "utf8"))),
);

describe("the documents' shell examples", () => {
  it("are all runnable or marked skip with a reason, and markers stand before blocks", () => {
    expect(parsed.flatMap((p) => p.problems)).toEqual([]);
    for (const [i, p] of parsed.entries()) {
      expect(
        p.examples.filter((e) => e.skip === undefined).length,
        `${DOCUMENTS[i]} has runnable examples`,
      ).toBeGreaterThan(0);
    }
  });
});

describe("the markers", () => {
  const fence = "```";
  it("refuse a skip without its reason, unknown markers, stray markers and unlabeled fences", () => {
    const md = [
      "<!-- example: skip -->",
      `${fence}sh`,
      "npm start",
      fence,
      "<!-- example: later -->",
      `${fence}sh`,
      "curl -s $K/v1/usage",
      fence,
      "<!-- example: skip (starts the server) -->",
      "",
      "Some prose.",
      fence,
      "text",
      fence,
    ].join("\n");
    expect(parseShellExamples("x.md", md).problems).toEqual([
      "x.md:1: a skip needs its reason in parentheses: `example: skip (why)`",
      "x.md:5: unknown marker `example: later` (skip (why), server NAME=value …, output)",
      "x.md:9: marker not right before a fenced block",
      "x.md:12: a fenced block without a language (label it, e.g. ```sh or ```text)",
    ]);
  });

  it("attach an output to the runnable block right before it, and a server restart to its block", () => {
    const md = [
      "<!-- example: server KURA_VECTOR__EMBED_MESSAGES=true -->",
      `${fence}console`,
      "$ curl -s $K/v1/usage \\",
      '    -H "$H"',
      '{"success": true}',
      fence,
      "",
      "<!-- example: output -->",
      `${fence}json`,
      '{"success": true, "data": {"n": 1}}',
      fence,
      "",
      "<!-- example: skip (shows a failure) -->",
      `${fence}sh`,
      "curl -s $K/v1/nothing",
      fence,
      "<!-- example: output -->",
      `${fence}json`,
      "{}",
      fence,
    ].join("\n");
    const { examples, problems } = parseShellExamples("x.md", md);
    expect(problems).toEqual(["x.md:17: an output block must follow a runnable shell block"]);
    expect(examples[0]).toMatchObject({
      line: 2,
      code: 'curl -s $K/v1/usage \\\n    -H "$H"\n\n',
      serverEnv: { KURA_VECTOR__EMBED_MESSAGES: "true" },
      output: { line: 9, text: '{"success": true, "data": {"n": 1}}' },
    });
    expect(examples[1]).toMatchObject({ skip: "shows a failure" });
  });

  it("compare outputs by keys, types and lengths, not by values", () => {
    const printed = splitJsonValues('{"a":"x","b":[1,2]}\n{"c":null}{"d":{"e":true}}');
    expect(printed).toHaveLength(3);
    expect(shapeDifferences({ a: "y", b: [3, 4] }, printed[0])).toEqual([]);
    expect(shapeDifferences({ a: 1, b: [3], f: 0 }, printed[0])).toEqual([
      '$.a: documented number, got string "x"',
      "$.b: documented 1 items, got 2",
      "$.f: documented, missing from the answer",
    ]);
    expect(shapeDifferences({ c: "id" }, printed[1])).toEqual(["$.c: documented string, got null"]);
    expect(shapeDifferences({ d: {} }, printed[2])).toEqual(["$.d.e: in the answer, not documented"]);
    expect(() => splitJsonValues('{"a":1} %PDF')).toThrow(/not a JSON object or array/);
  });
});

for (const [i, file] of DOCUMENTS.entries()) {
  const { examples } = parsed[i] as { examples: ShellExample[] };
  describe.skipIf(missing.length > 0)(`${file} examples against a live kura serve`, () => {
    const session = new Session();
    beforeAll(() => session.open(), 120_000);
    afterAll(() => session.close(), 60_000);

    for (const example of examples) {
      if (example.skip !== undefined) {
        it.skip(`${title(example)} (skipped: ${example.skip})`, () => {});
        continue;
      }
      it(title(example), { timeout: BLOCK_TIMEOUT_MS + 90_000 }, async (ctx) => {
        if (session.failed) ctx.skip(`an earlier block failed (${session.failed})`);
        try {
          if (example.serverEnv) await session.restartServer(example.serverEnv);
          const stdout = await session.run(example);
          if (example.output) {
            const where = `${file}:${example.output.line}`;
            const documented = splitJsonValues(example.output.text);
            let printed: unknown[];
            try {
              printed = splitJsonValues(stdout);
            } catch (e) {
              throw new Error(`${where}: the block printed more than JSON (${(e as Error).message})`);
            }
            expect(printed.length, `${where}: the number of JSON values printed`).toBe(documented.length);
            const differences = documented.flatMap((d, k) => shapeDifferences(d, printed[k], `$${k}`));
            expect(differences, `${where}: the documented output's shape\n${stdout}`).toEqual([]);
          }
        } catch (e) {
          session.failed = `${file}:${example.line}`;
          throw e;
        }
      });
    }
  });
}
