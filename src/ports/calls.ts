/**
 * What a layer may do with each method of a port, declared beside the port (`CATALOG_CALLS`,
 * `KV_CALLS`, `SEARCH_CALLS`, `VECTOR_CALLS`). The retry and timeout layers of the remote planes
 * (`layers/port-retry.ts`, `layers/port-timeout.ts`) act only on what these lists allow. A
 * method a list does not name is `once`: a new method is never repeated until someone decides
 * it may be, and the type refuses names the port does not have.
 *
 * - `read`: changes nothing. A layer may repeat it after a retryable failure, and give up on it
 *   client-side (an answer that arrives late changes nothing).
 * - `idempotent`: a write that, repeated after any outcome of an earlier attempt (applied, not
 *   applied, unknown), leaves the same state and gives the same answer. A layer may repeat it;
 *   its time limit is the server's own, so a timed-out call is known not to have applied.
 * - `once`: never repeated by a layer: after a failure its outcome may be unknown (a catalog
 *   commit whose connection died during COMMIT), and doing it twice differs from doing it once
 *   (a KV `incr`, a `set` that bumps the version). Its time limit is the server's own, or, where
 *   the protocol has none, the failure says the outcome is unknown.
 */
export type CallKind = "read" | "idempotent" | "once";

/** The names of a port's methods, `close` aside (closing is never layered). */
export type PortMethods<T> = Exclude<
  {
    // biome-ignore lint/suspicious/noExplicitAny: any function type, generic methods included
    [K in keyof T]-?: T[K] extends (...args: any[]) => any ? K : never;
  }[keyof T] &
    string,
  "close"
>;

/** Methods of the port `T` with what a layer may do with their calls; unnamed ones are `once`. */
export type PortCalls<T> = Readonly<Partial<Record<PortMethods<T>, CallKind>>>;

/** Whether a layer may repeat a call of this kind. */
export const repeatable = (kind: CallKind | undefined): boolean => kind === "read" || kind === "idempotent";
