/**
 * `fs` listing: a depth-first walk of the directories in UTF-8 byte order of the keys they
 * hold, decoding hashed names through `~name` files and footers.
 */
import type { Dirent } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { KuraError } from "../../../core/errors.js";
import { compareUtf8 } from "../../../core/keys.js";
import type { BlobInfo } from "../../../ports/blob-store.js";
import { DEFAULT_CONTENT_TYPE } from "../common.js";
import { isErrno } from "./errors.js";
import { decodeFooter } from "./footer.js";
import { DIR_NAME_FILE, decodeDir, decodeFile } from "./layout.js";

/**
 * Depth-first walk in UTF-8 byte order of keys; stops once `want` items are collected.
 * `infoOf` reads one object's info from its footer.
 */
export async function walk(
  dir: string,
  keyPrefix: string,
  prefix: string,
  after: string | undefined,
  want: number,
  out: BlobInfo[],
  infoOf: (key: string) => Promise<BlobInfo>,
): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR")) return;
    throw e;
  }
  const named: { sortKey: string; key: string; path: string; isDir: boolean }[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const d = decodeDir(entry.name);
      if (d.kind === "skip") continue;
      const segment =
        d.kind === "plain"
          ? d.segment
          : await readFile(join(path, DIR_NAME_FILE), "utf8").catch(() => undefined);
      if (segment === undefined) continue;
      const key = `${keyPrefix}${segment}/`;
      named.push({ sortKey: key, key, path, isDir: true });
    } else if (entry.isFile()) {
      const f = decodeFile(entry.name);
      if (f.kind === "skip") continue;
      let key: string;
      if (f.kind === "plain") key = keyPrefix + f.segment;
      else {
        const k = await footerKey(path);
        if (k === undefined) continue;
        key = k;
      }
      named.push({ sortKey: key, key, path, isDir: false });
    }
  }
  named.sort((a, b) => compareUtf8(a.sortKey, b.sortKey));
  for (const entry of named) {
    if (out.length >= want) return;
    if (entry.isDir) {
      const relevant = entry.key.startsWith(prefix) || prefix.startsWith(entry.key);
      const notBehind =
        after === undefined || compareUtf8(after, entry.key) < 0 || after.startsWith(entry.key);
      if (relevant && notBehind) await walk(entry.path, entry.key, prefix, after, want, out, infoOf);
    } else if (entry.key.startsWith(prefix) && (after === undefined || compareUtf8(entry.key, after) > 0)) {
      try {
        out.push(await infoOf(entry.key));
      } catch (e) {
        // Deleted between readdir and open: not part of the listing.
        if (e instanceof KuraError && e.code === "BLOB_NOT_FOUND") continue;
        // Damaged (a fresh key's body cut short by a crash): listed with what the file system
        // knows and no checksum, so GC and fsck find it; reading it fails as corrupt.
        if (!(e instanceof KuraError && e.code === "BLOB_METADATA_CORRUPT")) throw e;
        const st = await stat(entry.path).catch(() => undefined);
        if (st)
          out.push({
            key: entry.key,
            size: st.size,
            sha256: undefined,
            contentType: DEFAULT_CONTENT_TYPE,
            etag: undefined,
            lastModified: st.mtime,
            metadata: {},
          });
      }
    }
  }
}

async function footerKey(path: string): Promise<string | undefined> {
  try {
    const raw = await readFile(path);
    const footer = decodeFooter(raw, raw.length, path);
    return "need" in footer ? undefined : footer.k;
  } catch {
    return undefined;
  }
}
