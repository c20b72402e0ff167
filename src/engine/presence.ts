/**
 * Who is using a catalog right now, through one lease (`kura.serve`): every running `kura serve`
 * renews it (whichever node holds it, the lease stays held while any server runs), and commands
 * that must not run beside a live server (`kura reindex`) take it for their whole run — or
 * refuse with SERVER_RUNNING. A server that starts while such a command holds the lease logs a
 * warning and keeps trying.
 */
import { KuraError } from "../core/errors.js";
import type { Catalog } from "../ports/catalog.js";

export const SERVE_LEASE = "kura.serve";
const TTL_MS = 30_000;
const RENEW_MS = 10_000;

export interface Presence {
  /** Stop renewing and release the lease (if this owner holds it). */
  stop(): Promise<void>;
}

function hold(catalog: Catalog, owner: string, clock: () => number, onLost: (e?: unknown) => void): Presence {
  const renew = () =>
    catalog.tryLease({ name: SERVE_LEASE, owner, now: clock(), ttlMs: TTL_MS }).then(
      (held) => {
        if (!held) onLost();
      },
      (e: unknown) => onLost(e),
    );
  const timer = setInterval(() => void renew(), RENEW_MS);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await catalog.releaseLease({ name: SERVE_LEASE, owner }).catch(() => undefined);
    },
  };
}

/** A server announces itself: renews the lease while it runs (another node may hold it). */
export function announceServer(
  catalog: Catalog,
  owner: string,
  options: { clock?: () => number; onHeldElsewhere?: (e?: unknown) => void } = {},
): Presence {
  const clock = options.clock ?? Date.now;
  void catalog.tryLease({ name: SERVE_LEASE, owner, now: clock(), ttlMs: TTL_MS }).catch(() => undefined);
  return hold(catalog, owner, clock, options.onHeldElsewhere ?? (() => undefined));
}

/**
 * For a command that must run alone: take the lease, or refuse with SERVER_RUNNING while a
 * server holds it. The lease is renewed until `stop()`.
 */
export async function claimExclusive(
  catalog: Catalog,
  owner: string,
  what: string,
  clock: () => number = Date.now,
): Promise<Presence> {
  if (!(await catalog.tryLease({ name: SERVE_LEASE, owner, now: clock(), ttlMs: TTL_MS }))) {
    throw new KuraError(
      "SERVER_RUNNING",
      `a kura serve process is running against this catalog: stop it before ${what} (or wait up to ${TTL_MS / 1000} s after it stopped)`,
      { operation: what },
    );
  }
  return hold(catalog, owner, clock, () => undefined);
}
