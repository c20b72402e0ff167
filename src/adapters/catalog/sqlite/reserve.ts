/**
 * Disk space kept back so that deletes still commit on a full disk.
 *
 * A SQLite delete is a write: its WAL frames need free blocks. When the disk fills up (blobs,
 * KV and catalog share `data_dir`), every commit fails with SQLITE_FULL — deletes too — and
 * space could not be freed through the API. The catalog keeps a small file of real blocks
 * beside the database; when a commit that frees space (deletes only) hits a full disk, the
 * file is removed and the commit tried again in the blocks it gave back. The file is made
 * again once the disk has room (checked after successful commits, at most once a second).
 */
import { closeSync, openSync, rmSync, statfsSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import type { CatalogBatch } from "../../../ports/catalog.js";

/** 2 MiB: a few hundred small deletes' WAL frames, or a handful of checkpoints' worth. */
export const RESERVE_BYTES = 2 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0);
const RECHECK_MS = 1000;

export class SpaceReserve {
  private present = false;
  private checkedAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly path: string,
    private readonly bytes = RESERVE_BYTES,
  ) {}

  /** Make the reserve if it is missing and the disk has room for it and more; best effort. */
  ensure(now = Date.now()): void {
    if (this.present || now - this.checkedAt < RECHECK_MS) return;
    this.checkedAt = now;
    try {
      if (statSync(this.path).size >= this.bytes) {
        this.present = true;
        return;
      }
    } catch {
      // missing: make it below
    }
    try {
      const fs = statfsSync(dirname(this.path));
      if (fs.bavail * fs.bsize < 2 * this.bytes) return;
      // Written, not truncated: a sparse file would give nothing back.
      const fd = openSync(this.path, "w");
      try {
        for (let written = 0; written < this.bytes; written += CHUNK.length) writeSync(fd, CHUNK);
      } finally {
        closeSync(fd);
      }
      this.present = true;
    } catch {
      rmSync(this.path, { force: true });
    }
  }

  /** Give the reserve's blocks back to the file system; false if there was none. */
  release(): boolean {
    const had = this.present;
    this.present = false;
    this.checkedAt = Date.now();
    try {
      rmSync(this.path, { force: true });
    } catch {
      return false;
    }
    return had;
  }
}

/** Ops that only take away (or record taking away): a batch of these frees space. */
const FREEING = new Set(["deleteObject", "deleteMessage", "deleteBlobRef", "setMessageDeleted"]);
const BOOKKEEPING = new Set(["addUsage", "appendOutbox", "appendAudit"]);

/** Whether a batch deletes and writes nothing new (it may use the reserve on a full disk). */
export function freesSpace(batch: CatalogBatch): boolean {
  let deletes = false;
  for (const op of batch.ops) {
    if (op.op === "setMessageDeleted" && op.deletedAt === null) return false;
    if (FREEING.has(op.op)) deletes = true;
    else if (!BOOKKEEPING.has(op.op)) return false;
  }
  return deletes;
}
