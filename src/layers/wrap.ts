/**
 * A layer takes a BlobStore and returns a BlobStore (the opendal model). Every layer here is an
 * `Around` function applied to each operation by {@link wrapBlobStore}, so the list of
 * operations is written down once.
 */
import { Readable } from "node:stream";
import type { BlobStore, BlobStoreStats, PresignOptions, PutManyItem } from "../ports/blob-store.js";

export type BlobOperation =
  | "put"
  | "putMany"
  | "get"
  | "getBuffer"
  | "head"
  | "exists"
  | "delete"
  | "list"
  | "copy"
  | "presign";

export interface CallInfo {
  operation: BlobOperation;
  /** The key, prefix or first key the call is about. */
  key: string | undefined;
  /** Every key of a call about several (`putMany`). */
  keys?: readonly string[];
  /** Whether the call may be repeated: false for a put whose body is a stream (it is consumed). */
  repeatable: boolean;
  /** The caller's abort signal, if any. */
  signal: AbortSignal | undefined;
}

/** Runs `call` (possibly several times, possibly not at all) and returns its result. */
export type Around = <T>(info: CallInfo, call: (signal: AbortSignal | undefined) => Promise<T>) => Promise<T>;

/**
 * The same for a synchronous read (`getBufferSync`): runs `call` at most once, or answers
 * undefined to send the caller to `getBuffer` (through the asynchronous `Around`).
 */
export type AroundSync = <T>(info: CallInfo, call: () => T | undefined) => T | undefined;

type SignalOpts = { signal?: AbortSignal } | undefined;
const withSignal = <O extends SignalOpts>(options: O, signal: AbortSignal | undefined): O =>
  (signal === undefined ? options : { ...(options ?? {}), signal }) as O;

/**
 * `inner` with `around` applied to every operation. `getBufferSync` is kept only when the layer
 * gives `aroundSync`: a layer that must see, delay or repeat every read leaves it out, and
 * callers then read through `getBuffer`.
 */
export function wrapBlobStore(inner: BlobStore, around: Around, aroundSync?: AroundSync): BlobStore {
  const info = (
    operation: BlobOperation,
    key: string | undefined,
    options?: SignalOpts,
    repeatable = true,
  ): CallInfo => ({
    operation,
    key,
    repeatable,
    signal: options?.signal,
  });
  return {
    scheme: inner.scheme,
    location: inner.location,
    capabilities: inner.capabilities,
    put: (key, body, options) =>
      around(info("put", key, options, body instanceof Uint8Array && !(body instanceof Readable)), (s) =>
        inner.put(key, body, withSignal(options, s)),
      ),
    ...(inner.putMany
      ? {
          putMany: (items: readonly PutManyItem[], options?: { signal?: AbortSignal }) => {
            const keys = items.map((i) => i.key);
            return around({ ...info("putMany", keys[0], options), keys }, (s) =>
              (inner.putMany as NonNullable<BlobStore["putMany"]>).call(inner, items, withSignal(options, s)),
            );
          },
        }
      : {}),
    get: (key, options) => around(info("get", key, options), (s) => inner.get(key, withSignal(options, s))),
    getBuffer: (key, options) =>
      around(info("getBuffer", key, options), (s) => inner.getBuffer(key, withSignal(options, s))),
    head: (key, options) =>
      around(info("head", key, options), (s) => inner.head(key, withSignal(options, s))),
    exists: (key) => around(info("exists", key), () => inner.exists(key)),
    delete: (keys, options) =>
      around(info("delete", typeof keys === "string" ? keys : keys[0], options), (s) =>
        inner.delete(keys, withSignal(options, s)),
      ),
    list: (prefix, options) =>
      around(info("list", prefix, options), (s) => inner.list(prefix, withSignal(options, s))),
    copy: (source, target, options) =>
      around(info("copy", source, options), (s) => inner.copy(source, target, withSignal(options, s))),
    presign: (key, options: PresignOptions) =>
      around(info("presign", key), () => inner.presign(key, options)),
    ...(inner.getBufferSync && aroundSync
      ? {
          getBufferSync: (key: string, options?: Parameters<NonNullable<BlobStore["getBufferSync"]>>[1]) =>
            aroundSync(info("getBuffer", key), () => inner.getBufferSync?.(key, options)),
        }
      : {}),
    ...(inner.stats ? { stats: () => (inner.stats as () => Promise<BlobStoreStats>).call(inner) } : {}),
    close: () => inner.close(),
  };
}
