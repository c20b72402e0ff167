/**
 * Resumable uploads (API-6) through a real `kura serve` on SQLite + fs (and, where radosgw runs,
 * on S3), driven by tus-js-client as applications drive it, and by raw requests where the
 * client hides the protocol (offsets, checksums, versions).
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { S3Client } from "@aws-sdk/client-s3";
import * as tus from "tus-js-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";
import type { KvStore } from "../../src/ports/kv-store.js";
import { createBucket, emptyAndDeleteBucket } from "../conformance/s3-harness.js";
import { backendAvailable } from "../support/backends.js";
import { postgresForTests } from "../support/servers/postgres.js";
import {
  RADOSGW_ACCESS_KEY,
  RADOSGW_SECRET_KEY,
  type RadosgwServer,
  radosgwProblem,
  startRadosgw,
} from "../support/servers/radosgw.js";
import { dropPrefix, REDIS_URL, redisProblem } from "../support/servers/redis.js";
import { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, startS3rver } from "../support/servers/s3rver.js";
import { type Harness, readJson, SECRET, startServer } from "./harness.js";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

interface ClientOptions {
  token: string;
  metadata?: Record<string, string>;
  chunkSize?: number;
  uploadUrl?: string;
  uploadLengthDeferred?: boolean;
  uploadDataDuringCreation?: boolean;
  onChunkComplete?: (upload: tus.Upload, accepted: number) => void;
}

/** Runs one tus-js-client upload to its end; resolves with its URL, rejects with its error. */
function upload(
  h: Harness,
  input: Buffer | Readable,
  o: ClientOptions,
): { done: Promise<string>; upload: tus.Upload } {
  let resolveDone: (url: string) => void = () => {};
  let rejectDone: (e: unknown) => void = () => {};
  const done = new Promise<string>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  const u: tus.Upload = new tus.Upload(input as unknown as tus.Upload["file"], {
    endpoint: `${h.base}/v1/uploads`,
    headers: { authorization: `Bearer ${o.token}` },
    metadata: o.metadata ?? {},
    retryDelays: [],
    ...(o.chunkSize !== undefined ? { chunkSize: o.chunkSize } : {}),
    ...(o.uploadUrl !== undefined ? { uploadUrl: o.uploadUrl } : {}),
    ...(o.uploadLengthDeferred ? { uploadLengthDeferred: true } : {}),
    ...(o.uploadDataDuringCreation ? { uploadDataDuringCreation: true } : {}),
    onChunkComplete: (_size, accepted) => o.onChunkComplete?.(u, accepted),
    onSuccess: () => resolveDone(u.url as string),
    onError: (e) => rejectDone(e),
  });
  u.start();
  return { done, upload: u };
}

/** The status of a tus-js-client error (its failed response). */
function statusOf(e: unknown): number | undefined {
  return (e as { originalResponse?: { getStatus(): number } | null }).originalResponse?.getStatus();
}

async function blobsUnder(h: Harness, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await h.kura.store.list(prefix, cursor ? { cursor } : {});
    keys.push(...page.items.map((i) => i.key));
    cursor = page.cursor;
  } while (cursor);
  return keys;
}

const TUS = { "tus-resumable": "1.0.0" };

/** The tus behaviour every blob store must give; `h()` is a running server. */
function uploadSuite(h: () => Harness, tenant: string) {
  it("uploads a file whole with tus-js-client; the object appears only once complete", async () => {
    const token = await h().token(tenant);
    const body = randomBytes(300_000);
    // The first chunk in, the upload paused: no object yet.
    const first = upload(h(), body, {
      token,
      chunkSize: 100_000,
      metadata: { key: "big/file.bin", filetype: "application/x-test" },
      onChunkComplete: (u, accepted) => {
        if (accepted === 100_000) void u.abort();
      },
    });
    first.done.catch(() => undefined);
    let paused: string | undefined;
    for (let i = 0; i < 500 && !paused; i++) {
      await new Promise((r) => setTimeout(r, 10));
      const at = first.upload.url;
      if (at) {
        const head = await fetch(at, {
          method: "HEAD",
          headers: { ...TUS, authorization: `Bearer ${token}` },
        });
        if (head.headers.get("upload-offset") === "100000") paused = at;
      }
    }
    expect(paused).toBeDefined();
    expect((await h().call("GET", "/v1/objects/big/file.bin", { token })).status).toBe(404);
    const { done } = upload(h(), body, { token, chunkSize: 100_000, uploadUrl: paused as string });
    const url = await done;
    expect(url).toMatch(new RegExp(`^${h().base}/v1/uploads/[0-9a-f]{32}$`));
    const got = await fetch(`${h().base}/v1/objects/big/file.bin`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(got.status).toBe(200);
    expect(got.headers.get("content-type")).toBe("application/x-test");
    expect(sha(Buffer.from(await got.arrayBuffer()))).toBe(sha(body));
    // The upload answers HEAD with its full offset, and its parts are gone.
    const head = await fetch(url, { method: "HEAD", headers: { ...TUS, authorization: `Bearer ${token}` } });
    expect(head.status).toBe(200);
    expect(head.headers.get("upload-offset")).toBe(String(body.length));
    expect(head.headers.get("upload-length")).toBe(String(body.length));
    expect(await blobsUnder(h(), `${tenant}/uploads/`)).toEqual([]);
  });
}

describe("tus uploads (fs)", () => {
  let h: Harness;
  let now = Date.now();
  let kv: KvStore | undefined;
  beforeAll(async () => {
    h = await startServer({
      open: {
        clock: () => now,
        wrapKv: (k) => {
          kv = k;
          return k;
        },
      },
      config: {
        tiers: { tiny: { limits: { max_storage_bytes: 50_000 } } },
        server: { cors: { origins: ["https://app.example"] } },
      },
    });
  });
  afterAll(async () => h?.close());

  uploadSuite(() => h, "acme");

  it("resumes an interrupted upload from a new client with the stored URL", async () => {
    const token = await h.token("acme");
    const body = randomBytes(400_000);
    const first = upload(h, body, {
      token,
      chunkSize: 50_000,
      metadata: { key: "resumed.bin" },
      onChunkComplete: (u, accepted) => {
        if (accepted >= 150_000) void u.abort();
      },
    });
    first.done.catch(() => undefined);
    await new Promise<void>((resolve) => {
      const wait = setInterval(() => {
        if (first.upload.url) {
          clearInterval(wait);
          resolve();
        }
      }, 10);
    });
    const url = first.upload.url as string;
    // Wait for the abort to settle, then see where the upload stands.
    let offset = 0;
    for (let i = 0; i < 200 && offset < 150_000; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const head = await fetch(url, {
        method: "HEAD",
        headers: { ...TUS, authorization: `Bearer ${token}` },
      });
      offset = Number(head.headers.get("upload-offset"));
    }
    expect(offset).toBeGreaterThanOrEqual(150_000);
    expect(offset).toBeLessThan(body.length);
    expect((await h.call("GET", "/v1/objects/resumed.bin", { token })).status).toBe(404);

    let firstPatchOffset: number | undefined;
    const second = upload(h, body, {
      token,
      chunkSize: 50_000,
      uploadUrl: url,
      metadata: { key: "resumed.bin" },
      onChunkComplete: (_u, accepted) => {
        firstPatchOffset ??= accepted;
      },
    });
    expect(await second.done).toBe(url);
    // The second client started where the first stopped, not at 0.
    expect(firstPatchOffset).toBeGreaterThan(offset);
    const got = await fetch(`${h.base}/v1/objects/resumed.bin`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(sha(Buffer.from(await got.arrayBuffer()))).toBe(sha(body));
  });

  it("uploads a stream of unknown length (creation-defer-length)", async () => {
    const token = await h.token("acme");
    const body = randomBytes(230_000);
    const { done } = upload(h, Readable.from([body.subarray(0, 100_000), body.subarray(100_000)]), {
      token,
      chunkSize: 64_000,
      uploadLengthDeferred: true,
      metadata: { key: "deferred.bin" },
    });
    await done;
    const got = await fetch(`${h.base}/v1/objects/deferred.bin`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(sha(Buffer.from(await got.arrayBuffer()))).toBe(sha(body));
  });

  it("takes the first bytes with the creation request (creation-with-upload)", async () => {
    const token = await h.token("acme");
    const body = randomBytes(40_000);
    const { done } = upload(h, body, {
      token,
      uploadDataDuringCreation: true,
      metadata: { key: "with-upload.bin" },
    });
    await done;
    const got = await fetch(`${h.base}/v1/objects/with-upload.bin`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(sha(Buffer.from(await got.arrayBuffer()))).toBe(sha(body));

    // Raw: the POST's body is stored and the offset is reported.
    const r = await fetch(`${h.base}/v1/uploads`, {
      method: "POST",
      headers: {
        ...TUS,
        authorization: `Bearer ${token}`,
        "upload-length": "10",
        "upload-metadata": `key ${b64("raw-create.txt")}`,
        "content-type": "application/offset+octet-stream",
      },
      body: "0123",
    });
    expect(r.status).toBe(201);
    expect(r.headers.get("upload-offset")).toBe("4");
    expect(r.headers.get("tus-resumable")).toBe("1.0.0");
    expect(r.headers.get("upload-expires")).toBeTruthy();
  });

  it("writes a session file (session_id + path)", async () => {
    const token = await h.token("acme");
    const body = randomBytes(70_000);
    await upload(h, body, {
      token,
      chunkSize: 30_000,
      metadata: { session_id: "s1", path: "docs/report.pdf", filetype: "application/pdf" },
    }).done;
    const got = await fetch(`${h.base}/v1/sessions/s1/files/docs/report.pdf`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(got.status).toBe(200);
    expect(sha(Buffer.from(await got.arrayBuffer()))).toBe(sha(body));
  });

  /** Creates an upload with raw requests; returns its URL. */
  const create = async (token: string, length: number, key: string) => {
    const r = await fetch(`${h.base}/v1/uploads`, {
      method: "POST",
      headers: {
        ...TUS,
        authorization: `Bearer ${token}`,
        "upload-length": String(length),
        "upload-metadata": `key ${b64(key)}`,
      },
    });
    expect(r.status, await r.text()).toBe(201);
    return r.headers.get("location") as string;
  };
  const patch = (
    url: string,
    token: string,
    offset: number,
    body: Uint8Array,
    extra: Record<string, string> = {},
  ) =>
    fetch(url, {
      method: "PATCH",
      headers: {
        ...TUS,
        authorization: `Bearer ${token}`,
        "upload-offset": String(offset),
        "content-type": "application/offset+octet-stream",
        ...extra,
      },
      body,
    });
  const headOf = (url: string, token: string) =>
    fetch(url, { method: "HEAD", headers: { ...TUS, authorization: `Bearer ${token}` } });

  it("answers 409 to a PATCH at the wrong offset, keeping nothing of it", async () => {
    const token = await h.token("acme");
    const url = await create(token, 10, "offsets.txt");
    expect((await patch(url, token, 0, Buffer.from("abcd"))).status).toBe(204);
    const wrong = await patch(url, token, 2, Buffer.from("zz"));
    expect(wrong.status).toBe(409);
    expect((await readJson(wrong)).error_code).toBe("UPLOAD_OFFSET_MISMATCH");
    expect((await headOf(url, token)).headers.get("upload-offset")).toBe("4");
    const id = url.split("/").at(-1) as string;
    expect(await blobsUnder(h, `acme/uploads/${id}/`)).toHaveLength(1);
    // Two PATCHes racing from the same offset: one wins, the other is 409, the bytes are one copy.
    const [a, b] = await Promise.all([
      patch(url, token, 4, Buffer.from("efg")),
      patch(url, token, 4, Buffer.from("EFG")),
    ]);
    expect([a.status, b.status].sort()).toEqual([204, 409]);
    expect(await blobsUnder(h, `acme/uploads/${id}/`)).toHaveLength(2);
    expect((await headOf(url, token)).headers.get("upload-offset")).toBe("7");
    expect((await patch(url, token, 7, Buffer.from("hij"))).status).toBe(204);
    const text = (await h.call("GET", "/v1/objects/offsets.txt", { token })).text;
    expect(["abcdefghij", "abcdEFGhij"]).toContain(text);
  });

  it("keeps the bytes that arrived before the client cut a request off", async () => {
    const token = await h.token("acme");
    const url = await create(token, 10, "cut.txt");
    const cut = request(url, {
      method: "PATCH",
      headers: {
        ...TUS,
        authorization: `Bearer ${token}`,
        "upload-offset": "0",
        "content-type": "application/offset+octet-stream",
        "content-length": "10",
      },
    });
    cut.on("error", () => undefined);
    cut.write("abcd");
    await new Promise((r) => setTimeout(r, 200));
    cut.destroy();
    let offset: string | null = "0";
    for (let i = 0; i < 200 && offset === "0"; i++) {
      await new Promise((r) => setTimeout(r, 10));
      offset = (await headOf(url, token)).headers.get("upload-offset");
    }
    expect(offset).toBe("4");
    expect((await patch(url, token, 4, Buffer.from("efghij"))).status).toBe(204);
    expect((await h.call("GET", "/v1/objects/cut.txt", { token })).text).toBe("abcdefghij");
  });

  it("answers 460 to a checksum mismatch and stores a matching body", async () => {
    const token = await h.token("acme");
    const url = await create(token, 6, "checked.txt");
    const digest = (s: string) => createHash("sha256").update(s).digest("base64");
    const bad = await patch(url, token, 0, Buffer.from("abc"), {
      "upload-checksum": `sha256 ${digest("abd")}`,
    });
    expect(bad.status).toBe(460);
    expect((await readJson(bad)).error_code).toBe("UPLOAD_CHECKSUM_MISMATCH");
    expect((await headOf(url, token)).headers.get("upload-offset")).toBe("0");
    const id = url.split("/").at(-1) as string;
    expect(await blobsUnder(h, `acme/uploads/${id}/`)).toEqual([]);
    const odd = await patch(url, token, 0, Buffer.from("abc"), { "upload-checksum": `md5 ${digest("abc")}` });
    expect(odd.status).toBe(400);
    expect((await readJson(odd)).error_code).toBe("UPLOAD_CHECKSUM_UNSUPPORTED");
    expect(
      (await patch(url, token, 0, Buffer.from("abc"), { "upload-checksum": `sha256 ${digest("abc")}` }))
        .status,
    ).toBe(204);
    expect((await patch(url, token, 3, Buffer.from("def"))).status).toBe(204);
    expect((await h.call("GET", "/v1/objects/checked.txt", { token })).text).toBe("abcdef");
  });

  it("speaks the protocol: Tus-Resumable, OPTIONS, Content-Type, lengths", async () => {
    const token = await h.token("acme");
    const options = await fetch(`${h.base}/v1/uploads`, { method: "OPTIONS" });
    expect(options.status).toBe(204);
    expect(options.headers.get("tus-version")).toBe("1.0.0");
    expect(options.headers.get("tus-extension")?.split(",")).toEqual(
      expect.arrayContaining([
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "termination",
        "expiration",
        "checksum",
      ]),
    );
    expect(options.headers.get("tus-checksum-algorithm")).toBe("sha256");
    expect(Number(options.headers.get("tus-max-size"))).toBeGreaterThan(0);

    const noVersion = await fetch(`${h.base}/v1/uploads`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "upload-length": "1",
        "upload-metadata": `key ${b64("v")}`,
      },
    });
    expect(noVersion.status).toBe(412);
    expect(noVersion.headers.get("tus-version")).toBe("1.0.0");
    expect((await readJson(noVersion)).error_code).toBe("TUS_VERSION_UNSUPPORTED");

    const url = await create(token, 3, "typed.txt");
    const wrongType = await patch(url, token, 0, Buffer.from("abc"), { "content-type": "text/plain" });
    expect(wrongType.status).toBe(415);
    const tooLong = await patch(url, token, 0, Buffer.from("abcd"));
    expect(tooLong.status).toBe(413);
    expect((await readJson(tooLong)).error_code).toBe("UPLOAD_LENGTH_EXCEEDED");

    const noTarget = await fetch(`${h.base}/v1/uploads`, {
      method: "POST",
      headers: { ...TUS, authorization: `Bearer ${token}`, "upload-length": "1" },
    });
    expect(noTarget.status).toBe(400);
    expect((await readJson(noTarget)).error_code).toBe("UPLOAD_INVALID");
    const traversal = await fetch(`${h.base}/v1/uploads`, {
      method: "POST",
      headers: {
        ...TUS,
        authorization: `Bearer ${token}`,
        "upload-length": "1",
        "upload-metadata": `key ${b64("../x")}`,
      },
    });
    expect(traversal.status).toBe(400);
    expect((await readJson(traversal)).error_code).toBe("KEY_INVALID");
    const noAuth = await fetch(`${h.base}/v1/uploads`, {
      method: "POST",
      headers: { ...TUS, "upload-length": "1" },
    });
    expect(noAuth.status).toBe(401);

    // CORS: a browser may send and read the tus headers.
    const preflight = await fetch(`${h.base}/v1/uploads`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "PATCH",
        "access-control-request-headers": "tus-resumable,upload-offset,content-type",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("upload-offset");
    const cors = await fetch(url, {
      method: "HEAD",
      headers: { ...TUS, authorization: `Bearer ${token}`, origin: "https://app.example" },
    });
    expect(cors.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("upload-offset");
  });

  it("terminates an upload: its parts go and it is 404", async () => {
    const token = await h.token("acme");
    const body = randomBytes(120_000);
    const first = upload(h, body, {
      token,
      chunkSize: 40_000,
      metadata: { key: "terminated.bin" },
      onChunkComplete: (u, accepted) => {
        if (accepted === 40_000) void u.abort();
      },
    });
    first.done.catch(() => undefined);
    let url: string | undefined;
    for (let i = 0; i < 200 && !url; i++) {
      await new Promise((r) => setTimeout(r, 10));
      if (
        first.upload.url &&
        Number((await headOf(first.upload.url, token)).headers.get("upload-offset")) > 0
      )
        url = first.upload.url;
    }
    const id = (url as string).split("/").at(-1) as string;
    expect((await blobsUnder(h, `acme/uploads/${id}/`)).length).toBeGreaterThan(0);
    await tus.Upload.terminate(url as string, { headers: { authorization: `Bearer ${token}` } });
    expect((await headOf(url as string, token)).status).toBe(404);
    expect(await blobsUnder(h, `acme/uploads/${id}/`)).toEqual([]);
    expect((await h.call("GET", "/v1/objects/terminated.bin", { token })).status).toBe(404);
  });

  it("hides an upload from other tenants (404)", async () => {
    const acme = await h.token("acme");
    const globex = await h.token("globex");
    const url = await create(acme, 4, "private.txt");
    expect((await headOf(url, globex)).status).toBe(404);
    const p = await patch(url, globex, 0, Buffer.from("evil"));
    expect(p.status).toBe(404);
    expect((await readJson(p)).error_code).toBe("UPLOAD_NOT_FOUND");
    const d = await fetch(url, { method: "DELETE", headers: { ...TUS, authorization: `Bearer ${globex}` } });
    expect(d.status).toBe(404);
    expect((await headOf(url, acme)).headers.get("upload-offset")).toBe("0");
    expect((await patch(url, acme, 0, Buffer.from("mine"))).status).toBe(204);
    expect((await h.call("GET", "/v1/objects/private.txt", { token: globex })).status).toBe(404);
  });

  it("expires an unfinished upload: 410, then 404 once the job removed it and its parts", async () => {
    const token = await h.token("acme");
    const url = await create(token, 10, "expiring.txt");
    const id = url.split("/").at(-1) as string;
    const first = await patch(url, token, 0, Buffer.from("abc"));
    expect(first.status).toBe(204);
    const expiresAt = Date.parse(first.headers.get("upload-expires") as string);
    expect(expiresAt - now).toBeGreaterThan(23 * 3_600_000);
    expect(expiresAt - now).toBeLessThanOrEqual(24 * 3_600_000);
    now += 25 * 3_600_000;
    const gone = await headOf(url, token);
    expect(gone.status).toBe(410);
    expect((await patch(url, token, 3, Buffer.from("def"))).status).toBe(410);
    expect(await blobsUnder(h, `acme/uploads/${id}/`)).toHaveLength(1);
    const reports = await h.kura.jobs.runOnce(now);
    expect(reports.find((r) => r.name === "expire-uploads")?.result?.expired).toBeGreaterThanOrEqual(1);
    expect((await headOf(url, token)).status).toBe(404);
    expect(await blobsUnder(h, `acme/uploads/${id}/`)).toEqual([]);
  });

  it("sweeps the parts of an upload whose state the KV store lost, once past the expiry", async () => {
    const token = await h.token("acme");
    const url = await create(token, 10, "forgotten.txt");
    const id = url.split("/").at(-1) as string;
    expect((await patch(url, token, 0, Buffer.from("abc"))).status).toBe(204);
    expect(await (kv as KvStore).delete(`~upload:${id}`)).toBe(true);
    expect((await headOf(url, token)).status).toBe(404);
    expect(await blobsUnder(h, `acme/uploads/${id}/`)).toHaveLength(1);
    now += 25 * 3_600_000;
    const reports = await h.kura.jobs.runOnce(now);
    expect(reports.find((r) => r.name === "expire-uploads")?.result?.lost_parts).toBeGreaterThanOrEqual(1);
    expect(await blobsUnder(h, `acme/uploads/${id}/`)).toEqual([]);
  });

  it("applies the tenant's quota and usage: too big fails cleanly, leaving no parts", async () => {
    const admin = await mintToken({ secret: SECRET, admin: true, ttlSeconds: 600 });
    const reg = await h.call("POST", "/v1/admin/tenants", {
      token: admin,
      json: { tenant_id: "small", tier: "tiny" },
    });
    expect(reg.status, reg.text).toBe(201);
    const token = await h.token("small");
    // Known length: refused at creation.
    const refused = upload(h, randomBytes(60_000), { token, metadata: { key: "huge.bin" } });
    const e = await refused.done.catch((x: unknown) => x);
    expect(statusOf(e)).toBe(507);
    // Unknown length: refused once the bytes pass what the quota leaves.
    const deferred = upload(h, Readable.from([randomBytes(30_000), randomBytes(30_000)]), {
      token,
      chunkSize: 30_000,
      uploadLengthDeferred: true,
      metadata: { key: "huge2.bin" },
    });
    const e2 = await deferred.done.catch((x: unknown) => x);
    expect([413, 507]).toContain(statusOf(e2));
    expect((await h.call("GET", "/v1/objects", { token })).json.data.items).toEqual([]);
    expect(await blobsUnder(h, "small/")).toEqual([]);
    // One that fits is counted in the tenant's usage.
    const fits = randomBytes(20_000);
    await upload(h, fits, { token, chunkSize: 8_000, metadata: { key: "fits.bin" } }).done;
    const usage = (await h.call("GET", "/v1/usage", { token })).json.data;
    expect(usage.bytes).toBe(20_000);
    expect(usage.objects).toBe(1);
    expect(await blobsUnder(h, "small/uploads/")).toEqual([]);
  });
});

/**
 * The core behaviour with an S3 blob store under the parts: radosgw (the proof, in CI) and
 * s3rver (fast, everywhere).
 */
function onS3(
  name: string,
  start: () => Promise<{
    endpoint: string;
    accessKeyId: string;
    secretAccessKey: string;
    stop(): Promise<void>;
  }>,
) {
  describe(`tus uploads (${name})`, () => {
    let h: Harness;
    let s3: S3Client;
    let bucket: string;
    let server: Awaited<ReturnType<typeof start>>;
    beforeAll(async () => {
      server = await start();
      s3 = new S3Client({
        endpoint: server.endpoint,
        region: "us-east-1",
        forcePathStyle: true,
        credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
      });
      bucket = await createBucket(s3, "tus");
      h = await startServer({
        config: {
          storage: {
            backend: "s3",
            options: {
              bucket,
              endpoint: server.endpoint,
              force_path_style: true,
              region: "us-east-1",
              credentials: "static",
              access_key_id: server.accessKeyId,
              secret_access_key: server.secretAccessKey,
            },
          },
        },
      });
    }, 300_000);
    afterAll(async () => {
      await h?.close();
      if (bucket) await emptyAndDeleteBucket(s3, bucket).catch(() => undefined);
      s3?.destroy();
      await server?.stop();
    });
    uploadSuite(() => h, "acme");
  });
}

onS3("s3rver", async () => {
  const s = await startS3rver();
  return {
    endpoint: s.endpoint,
    accessKeyId: S3RVER_ACCESS_KEY,
    secretAccessKey: S3RVER_SECRET_KEY,
    stop: () => s.destroy(),
  };
});

if (backendAvailable("s3-radosgw", radosgwProblem())) {
  onS3("radosgw", async () => {
    const rgw: RadosgwServer = await startRadosgw();
    return {
      endpoint: rgw.endpoint,
      accessKeyId: RADOSGW_ACCESS_KEY,
      secretAccessKey: RADOSGW_SECRET_KEY,
      stop: () => rgw.destroy(),
    };
  });
}

describe("tus uploads across two nodes sharing PostgreSQL, Redis and the blob store", async () => {
  const db = await postgresForTests();
  if ("problem" in db) throw new Error(db.problem);
  const problem = await redisProblem();
  if (problem) throw new Error(problem);
  const prefix = `kura-test-tus-${randomBytes(4).toString("hex")}:`;
  const nodes: Harness[] = [];
  let blobs: string;
  beforeAll(async () => {
    blobs = await mkdtemp(join(tmpdir(), "kura-tus-shared-"));
    const config = {
      database: { backend: "postgres", url: db.url },
      kv: { backend: "redis", url: REDIS_URL, key_prefix: prefix },
      storage: { backend: "fs", options: { base_path: blobs } },
      node: { allow_local_vectors: true },
    };
    nodes.push(await startServer({ config }));
    nodes.push(await startServer({ config }));
  }, 120_000);
  afterAll(async () => {
    for (const n of nodes) await n.close();
    await dropPrefix(prefix);
    await db.destroy();
    await rm(blobs, { recursive: true, force: true });
  });

  it("an upload begun on one node is finished on the other", async () => {
    const [a, b] = nodes as [Harness, Harness];
    const token = await a.token("acme");
    const body = randomBytes(200_000);
    const first = upload(a, body, {
      token,
      chunkSize: 60_000,
      metadata: { key: "roaming.bin" },
      onChunkComplete: (u, accepted) => {
        if (accepted === 120_000) void u.abort();
      },
    });
    first.done.catch(() => undefined);
    let url: string | undefined;
    for (let i = 0; i < 500 && !url; i++) {
      await new Promise((r) => setTimeout(r, 10));
      const at = first.upload.url;
      if (!at) continue;
      const head = await fetch(at, { method: "HEAD", headers: { ...TUS, authorization: `Bearer ${token}` } });
      if (head.headers.get("upload-offset") === "120000") url = at;
    }
    // The same upload through the other node (as a load balancer would send it there).
    const there = (url as string).replace(a.base, b.base);
    const head = await fetch(there, {
      method: "HEAD",
      headers: { ...TUS, authorization: `Bearer ${token}` },
    });
    expect(head.status).toBe(200);
    expect(head.headers.get("upload-offset")).toBe("120000");
    await upload(b, body, { token, chunkSize: 60_000, uploadUrl: there }).done;
    const got = await fetch(`${a.base}/v1/objects/roaming.bin`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(got.status).toBe(200);
    expect(sha(Buffer.from(await got.arrayBuffer()))).toBe(sha(body));
    expect((await a.call("GET", "/v1/usage", { token })).json.data.bytes).toBe(body.length);
  });
});
