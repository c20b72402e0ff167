/**
 * What the LMDB-backed adapters (KV `lmdb`, the `usearch` vector index's item store) share
 * about failed commits — a full disk above all.
 *
 * lmdb-js rejects every write of a failed commit with "Commit failed (see commitError for
 * details)" and puts the real error (ENOSPC, sometimes reported as EIO, or MDB_MAP_FULL) in
 * `commitError`, a promise of its own that nobody handles: left alone its rejection is
 * unhandled and ends the process. With event-turn batching (its default) it also drops the
 * commit promise of each batch's opening write. So environments are opened with
 * {@link LMDB_ENV_OPTIONS}, every write promise gets {@link guardCommitError}, and a failed
 * commit is classified with {@link commitFailure}.
 */
import { statfsSync } from "node:fs";

const noop = () => undefined;

/** Spread into lmdb-js `open()`: no event-turn batching (see above); batches still form per turn. */
export const LMDB_ENV_OPTIONS = Object.freeze({ eventTurnBatching: false });

/** Handle a failed commit's `commitError` promise so its rejection is never unhandled. */
export function guardCommitError(e: unknown): void {
  const p = (e as { commitError?: unknown } | null)?.commitError;
  if (p && typeof (p as PromiseLike<unknown>).then === "function")
    (p as PromiseLike<unknown>).then(noop, noop);
}

/** The real cause behind "Commit failed", if lmdb-js has it already (it rejects it first). */
async function commitCause(e: unknown): Promise<unknown> {
  guardCommitError(e);
  const p = (e as { commitError?: unknown } | null)?.commitError;
  if (!p || typeof (p as PromiseLike<unknown>).then !== "function") return undefined;
  let timer: NodeJS.Timeout | undefined;
  const later = new Promise<undefined>((r) => {
    timer = setTimeout(() => r(undefined), 10);
  });
  const cause = await Promise.race([
    Promise.resolve(p as PromiseLike<unknown>).then(
      () => undefined,
      (c: unknown) => c,
    ),
    later,
  ]);
  clearTimeout(timer);
  return cause;
}

/** ENOSPC (errno 28), EDQUOT (122) or MDB_MAP_FULL: the write did not fit. */
function isFull(e: unknown): boolean {
  if (e === undefined || e === null) return false;
  const code = (e as { code?: unknown }).code;
  if (code === 28 || code === 122 || code === -30792 || code === "ENOSPC" || code === "EDQUOT") return true;
  const message = e instanceof Error ? e.message : String(e);
  return /No space left|ENOSPC|MDB_MAP_FULL|quota exceeded/i.test(message);
}

/** Less than 1 MiB left where the environment lives. */
function diskAlmostFull(path: string): boolean {
  try {
    const fs = statfsSync(path);
    return fs.bavail * fs.bsize < 1024 * 1024;
  } catch {
    return false;
  }
}

/**
 * Why a commit failed: its real cause (from `commitError`) and whether it was for want of
 * space — by the error, or, since lmdb-js may report a write that did not fit as EIO, by the
 * file system holding `path` being (nearly) full.
 */
export async function commitFailure(e: unknown, path: string): Promise<{ cause: unknown; full: boolean }> {
  const cause = await commitCause(e);
  return { cause, full: isFull(e) || isFull(cause) || diskAlmostFull(path) };
}
