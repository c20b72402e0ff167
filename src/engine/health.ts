/**
 * Readiness of the five planes (`/readyz`, `Kura.health`).
 *
 * Two sources: a probe of each plane (a cheap read, bounded by a timeout, so a frozen Redis or
 * a hung mount answers "not ready" instead of hanging the check), and what recent writes met.
 * A read probe cannot see a full disk — reads still work — so the planes' writes are observed:
 * a write that failed with STORAGE_FULL marks its plane not ready until a write of that plane
 * succeeds again.
 */
import { isKuraError, type KuraError } from "../core/errors.js";
import type { BlobStore } from "../ports/blob-store.js";
import type { BatchOutcome, Catalog, CatalogBatch } from "../ports/catalog.js";
import type { KvStore } from "../ports/kv-store.js";

export type Plane = "blob" | "catalog" | "kv" | "search" | "vectors";
export const PLANES: readonly Plane[] = ["blob", "catalog", "kv", "search", "vectors"];

export type PlaneStatus = { ok: true; detail?: string } | { ok: false; code: string; reason: string };

export interface Health {
  ready: boolean;
  planes: Record<Plane, PlaneStatus>;
  /**
   * Bytes in the blob stores' temp files (uploads in progress, or cut and not yet swept); only
   * stores that keep temp files (fs) count. Absent when no store reports it.
   */
  tempBytes?: number;
}

/** The last write failure per plane that makes it not ready (today: STORAGE_FULL). */
export class WriteHealth {
  private readonly failures = new Map<Plane, KuraError>();

  observe(plane: Plane, error: unknown): void {
    if (isKuraError(error) && error.code === "STORAGE_FULL") this.failures.set(plane, error);
  }

  succeeded(plane: Plane): void {
    if (this.failures.size > 0) this.failures.delete(plane);
  }

  failure(plane: Plane): KuraError | undefined {
    return this.failures.get(plane);
  }
}

/**
 * Shadow an object's write methods (own properties over the prototype's) so their outcomes
 * reach `health`; the object stays the same instance, so everyone holding it is covered.
 */
function observeMethods<T extends object>(
  target: T,
  methods: readonly (keyof T & string)[],
  plane: Plane,
  health: WriteHealth,
): void {
  // A frozen plane object cannot be observed; readiness then relies on its probe alone.
  if (!Object.isExtensible(target)) return;
  for (const name of methods) {
    const inner = target[name];
    if (typeof inner !== "function") continue;
    const bound = (inner as (...args: unknown[]) => Promise<unknown>).bind(target);
    Object.defineProperty(target, name, {
      configurable: true,
      writable: true,
      value: (...args: unknown[]) =>
        bound(...args).then(
          (result) => {
            health.succeeded(plane);
            return result;
          },
          (e: unknown) => {
            health.observe(plane, e);
            throw e;
          },
        ),
    });
  }
}

export function observeKvWrites(kv: KvStore, health: WriteHealth): void {
  observeMethods(kv, ["set", "setMany", "incr"], "kv", health);
}

export function observeBlobWrites(store: BlobStore, health: WriteHealth): void {
  observeMethods(store, ["put", "putMany", "copy"], "blob", health);
}

/** Catalog commits resolve with per-batch outcomes: any STORAGE_FULL marks, any success clears. */
export function observeCatalogWrites(catalog: Catalog, health: WriteHealth): void {
  if (!Object.isExtensible(catalog)) return;
  const inner = catalog.commit.bind(catalog);
  Object.defineProperty(catalog, "commit", {
    configurable: true,
    writable: true,
    value: async (batches: CatalogBatch[]): Promise<BatchOutcome[]> => {
      const outcomes = await inner(batches);
      let full: KuraError | undefined;
      let ok = false;
      for (const o of outcomes) {
        if (o.ok) ok = true;
        else if (o.error.code === "STORAGE_FULL") full = o.error;
      }
      if (full) health.observe("catalog", full);
      else if (ok) health.succeeded("catalog");
      return outcomes;
    },
  });
}

/** Run `probe` with a deadline; its failure (or the deadline) becomes the plane's status. */
export async function probePlane(
  plane: Plane,
  probe: () => Promise<unknown>,
  timeoutMs: number,
): Promise<PlaneStatus> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<PlaneStatus>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({
          ok: false,
          code: "OPERATION_TIMEOUT",
          reason: `${plane} did not answer within ${timeoutMs} ms`,
        }),
      timeoutMs,
    );
  });
  // `Promise.resolve().then(probe)`: a probe that throws synchronously is a failed plane too.
  const run = Promise.resolve()
    .then(probe)
    .then(
      (): PlaneStatus => ({ ok: true }),
      (e: unknown): PlaneStatus => ({
        ok: false,
        code: isKuraError(e) ? e.code : "UNEXPECTED",
        reason: e instanceof Error ? e.message : String(e),
      }),
    );
  try {
    return await Promise.race([run, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
