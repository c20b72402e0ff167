/**
 * `kura demo`: stores and reads a few objects on the embedded fs backend and says what it did.
 */
import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { collect } from "../core/checksum.js";
import { openBlobStore } from "../engine/blob-stores.js";
import { ContentUrls } from "../engine/content-url.js";

export async function runDemo(options: { dataDir: string; print: (line: string) => void }): Promise<void> {
  const { print } = options;
  const basePath = resolve(options.dataDir, "blobs");
  const store = await openBlobStore({ backend: "fs", options: { base_path: basePath } });
  const urls = new ContentUrls({ primary: store });
  const tenant = "demo";
  const chat = "welcome";
  const id = randomUUID();
  const day = new Date().toISOString().slice(0, 10).split("-").join("/");
  const key = `${tenant}/messages/${day}/${chat}/${id}.json`;
  const content = "こんにちは、Kura! Every body lives in object storage.";
  const body = JSON.stringify({
    content,
    metadata: { chat_id: chat, message_id: id, original_size: Buffer.byteLength(content) },
    created_at: new Date().toISOString(),
  });

  print(`Kura demo — fs blob store at ${basePath}`);
  const put = await store.put(key, Buffer.from(body), { contentType: "application/json" });
  print(`put   ${key}  (${put.size} bytes, sha256 ${put.sha256.slice(0, 16)}…)`);
  const url = urls.urlFor("primary", key);
  print(`url   ${url}`);
  const back = await urls.read(url, tenant);
  print(`read  ${back.length} bytes back through the URL, checksum verified: ${back.toString() === body}`);
  const range = await store.get(key, { range: { start: 0, end: 11 } });
  print(`range bytes 0-11: ${JSON.stringify((await collect(range.body)).toString())}`);
  const page = await store.list(`${tenant}/messages/`, { limit: 5 });
  print(`list  ${tenant}/messages/ → ${page.items.length} object(s) on this page`);
  const presigned = await store.presign(key, { method: "GET", expiresIn: 300 });
  print(`presigned GET (served by \`kura serve\`): ${presigned.url.slice(0, 80)}…`);
  await store.close();
  print("done.");
}
