/**
 * The standard layers of a remote port (a catalog, KV store, search or vector index on a server),
 * outermost first: retry → timeout → adapter, as on the blob plane — retries see a client-side
 * timeout as one more retryable failure. What each layer may do with a method is the port's call
 * list (`ports/calls.ts`). The openers in `open/` apply them to adapters that declare the
 * capability `remote`; embedded adapters get neither (nothing to reconnect to, and synchronous
 * calls a timer cannot interrupt).
 */
import type { CallKind } from "../ports/calls.js";
import { withPortRetry } from "./port-retry.js";
import { withPortTimeout } from "./port-timeout.js";
import type { RetryOptions } from "./retry.js";

/** Client-side limit of a remote read when the configuration names none: above the server's 30 s. */
export const DEFAULT_READ_TIMEOUT_MS = 60_000;

export interface RemoteLayerOptions {
  plane: string;
  calls: Readonly<Record<string, CallKind>>;
  /** Client-side limit of each `read`, in ms; 0 or undefined for none (the server's limits only). */
  readTimeoutMs?: number;
  /** Retry settings; `false` for no retry layer. */
  retry?: RetryOptions | false;
}

export function withRemoteLayers<T extends object>(port: T, o: RemoteLayerOptions): T {
  let layered = port;
  if (o.readTimeoutMs !== undefined && o.readTimeoutMs > 0)
    layered = withPortTimeout(layered, { plane: o.plane, calls: o.calls, limitMs: o.readTimeoutMs });
  if (o.retry !== false)
    layered = withPortRetry(layered, { ...(o.retry ?? {}), plane: o.plane, calls: o.calls });
  return layered;
}
