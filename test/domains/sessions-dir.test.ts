/**
 * Seed 002's local mode: with the fs backend, session files live under SESSIONS_DIR
 * (`sessions.dir`), not among the blobs, and their presigned URLs are signed with the same
 * secret as the primary store's.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyPath } from "../../src/adapters/blob/fs/layout.js";
import { loadConfig } from "../../src/config/index.js";
import { verifyPresignedRequest } from "../../src/core/presign.js";
import { Kura } from "../../src/kura.js";

describe("session files in SESSIONS_DIR (fs backend)", () => {
  let dir: string;
  let kura: Kura;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kura-sessdir-"));
    const config = await loadConfig({
      cwd: dir,
      env: { SESSIONS_DIR: join(dir, "session-files"), KURA_KV: "memory:" },
    });
    kura = await Kura.open(config);
  });
  afterAll(async () => {
    await kura?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("writes session files under sessions.dir and signs their URLs with the primary secret", async () => {
    const s = kura.tenant("t1").sessions;
    await s.putFile("sess-1", "uploads/a.txt", Buffer.from("hello"));
    expect(existsSync(keyPath(join(dir, "session-files"), "t1/sessions/sess-1/uploads/a.txt").file)).toBe(
      true,
    );
    expect(existsSync(join(dir, "data", "blobs", "t1"))).toBe(false);
    expect((await s.readFile("sess-1", "uploads/a.txt")).data.toString()).toBe("hello");
    const url = await s.presignDownload("sess-1", "uploads/a.txt");
    const secret = readFileSync(join(dir, "data", "blobs", "~kura", "presign.key"));
    const claims = verifyPresignedRequest(secret.toString("utf8").trim(), { method: "GET", url: url.url });
    expect(claims.key).toBe("t1/sessions/sess-1/uploads/a.txt");
  });
});
