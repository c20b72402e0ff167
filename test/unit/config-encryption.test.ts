/**
 * The `encryption` section (SEC-2): the master key by `env:NAME` or from a file (32 bytes in
 * base64), redacted when printed; every problem CONFIG_INVALID at its own path.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { redactConfig, type StorageOptionsParser } from "../../src/config/index.js";
import { isKuraError, type KuraError } from "../../src/core/errors.js";
import { resolveConfig } from "../../src/open/config.js";

const passthrough: StorageOptionsParser = async (_backend, options) => options;
const KEY = randomBytes(32).toString("base64");

async function problemsOf(config: unknown, env: Record<string, string> = {}) {
  try {
    await resolveConfig(config, {
      env,
      cwd: await mkdtemp(join(tmpdir(), "kura-enc-")),
      storageOptionsParser: passthrough,
    });
  } catch (e) {
    if (!isKuraError(e)) throw e;
    return {
      code: e.code,
      problems: (e as KuraError).context.problems as { path: string; message: string }[],
    };
  }
  return undefined;
}

describe("the encryption section", () => {
  it("is off by default and takes the master key from env:NAME or a file", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "kura-enc-"));
    const off = await resolveConfig({}, { env: {}, cwd, storageOptionsParser: passthrough });
    expect(off.encryption).toBeNull();
    const byEnv = await resolveConfig(
      { encryption: { master_key: "env:KURA_MASTER_KEY" } },
      { env: { KURA_MASTER_KEY: KEY }, cwd, storageOptionsParser: passthrough },
    );
    expect(byEnv.encryption).toEqual({
      master_key: KEY,
      master_key_file: null,
      previous_master_keys: [],
      refresh_ms: 5000,
    });
    expect(JSON.stringify(redactConfig(byEnv))).not.toContain(KEY);
    await writeFile(join(cwd, "master.key"), `${KEY}\n`);
    const byFile = await resolveConfig(
      { encryption: { master_key_file: "master.key" } },
      { env: {}, cwd, storageOptionsParser: passthrough },
    );
    expect(byFile.encryption?.master_key).toBe(KEY);
    expect(byFile.encryption?.master_key_file).toBe(join(cwd, "master.key"));
  });

  it("names each problem: a short key, not base64, both or neither given, an unreadable file", async () => {
    const short = await problemsOf({ encryption: { master_key: Buffer.alloc(16).toString("base64") } });
    expect(short?.code).toBe("CONFIG_INVALID");
    expect(short?.problems).toEqual([
      expect.objectContaining({
        path: "encryption.master_key",
        message: expect.stringContaining("16 bytes"),
      }),
    ]);
    const notBase64 = await problemsOf({ encryption: { master_key: "not base64 at all!" } });
    expect(notBase64?.problems[0]?.path).toBe("encryption.master_key");
    const both = await problemsOf({ encryption: { master_key: KEY, master_key_file: "/x" } });
    expect(both?.problems[0]?.message).toContain("exactly one");
    const neither = await problemsOf({ encryption: { refresh_ms: 100 } });
    expect(neither?.problems[0]?.message).toContain("exactly one");
    const missing = await problemsOf({ encryption: { master_key_file: "/nonexistent/master.key" } });
    expect(missing?.problems[0]).toMatchObject({ path: "encryption.master_key_file" });
    const previous = await problemsOf({ encryption: { master_key: KEY, previous_master_keys: ["abc"] } });
    expect(previous?.problems[0]?.path).toBe("encryption.previous_master_keys.0");
    const env = await problemsOf({ encryption: { master_key: "env:UNSET_MASTER" } });
    expect(env?.problems[0]).toMatchObject({ path: "encryption.master_key" });
  });
});
