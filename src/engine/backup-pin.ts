/**
 * The body pin (CONS-4): while a backup copies the bodies its catalog snapshot references, no
 * body may go. It is one catalog lease (`kura.backup`), held and renewed by the backup. Every
 * deleter of bodies asks for it *after* its commit and before deleting:
 *
 * - the write protocol's dropped bodies (a replaced object, an erased message) then stay, as
 *   orphans for GC;
 * - orphan GC deletes nothing while it is held.
 *
 * Why a read after the commit is enough: a snapshot references a body only if it was taken
 * before the commit that dropped it; the backup takes the pin before its snapshot, so a deleter
 * that reads the pin after that commit finds it held. A body GC finds unreferenced was
 * unreferenced before any later snapshot, which therefore does not need it.
 */
import { KuraError } from "../core/errors.js";
import type { Catalog } from "../ports/catalog.js";

export const BACKUP_PIN = "kura.backup";
const TTL_MS = 60_000;
const RENEW_MS = 15_000;

export interface BodyPin {
  /** Stop renewing and release the pin. */
  release(): Promise<void>;
}

/**
 * Whether bodies are pinned now. A catalog that cannot answer counts as pinned: a body kept is
 * an orphan GC removes later, a body deleted under a backup is lost to it.
 */
export async function bodiesPinned(catalog: Catalog, now: number): Promise<boolean> {
  try {
    return (await catalog.leaseOwner(BACKUP_PIN, now)) !== undefined;
  } catch {
    return true;
  }
}

/** Take the pin for a backup, or BACKUP_RUNNING while another holds it; renewed until `release`. */
export async function pinBodies(
  catalog: Catalog,
  owner: string,
  clock: () => number = Date.now,
): Promise<BodyPin> {
  if (!(await catalog.tryLease({ name: BACKUP_PIN, owner, now: clock(), ttlMs: TTL_MS }))) {
    const holder = await catalog.leaseOwner(BACKUP_PIN, clock()).catch(() => undefined);
    throw new KuraError(
      "BACKUP_RUNNING",
      `the body pin is held${holder ? ` by ${holder}` : ""}: another backup is running (or its pin expires within ${TTL_MS / 1000} s)`,
      { operation: "backup.pin" },
    );
  }
  // A renewal that fails is tried again at the next tick, within the lease's lifetime.
  const timer = setInterval(() => {
    catalog.tryLease({ name: BACKUP_PIN, owner, now: clock(), ttlMs: TTL_MS }).catch(() => undefined);
  }, RENEW_MS);
  timer.unref();
  return {
    release: async () => {
      clearInterval(timer);
      await catalog.releaseLease({ name: BACKUP_PIN, owner }).catch(() => undefined);
    },
  };
}
