/**
 * Fault-injection layer for crash and fault tests: a {@link FaultController} decides, per call,
 * to fail it (before or after it reaches the store), delay it, or let it pass. Rules are
 * consumed in order; a rule with `times` stops after that many hits.
 */
import { type ErrorCode, KuraError } from "../core/errors.js";
import type { BlobStore } from "../ports/blob-store.js";
import { type BlobOperation, type CallInfo, wrapBlobStore } from "./wrap.js";

export interface FaultRule {
  /** Operations the rule applies to; all when omitted. */
  operations?: BlobOperation[];
  /** Only calls whose key matches. */
  keyMatches?: (key: string | undefined) => boolean;
  /** `before`: the store never sees the call; `after`: the call happens, then the caller gets an error (a lost ack). */
  when?: "before" | "after";
  /** Error code to throw; default `FAULT_INJECTED` (Unavailable, retryable). */
  code?: ErrorCode;
  /** Delay in ms before the call proceeds (or fails). */
  delayMs?: number;
  /** Stop after this many hits; unlimited when omitted. */
  times?: number;
}

export class FaultController {
  private rules: (FaultRule & { hits: number })[] = [];
  /** Every call seen, in order (operation and key), for assertions. */
  readonly calls: { operation: BlobOperation; key: string | undefined }[] = [];

  add(rule: FaultRule): this {
    this.rules.push({ ...rule, hits: 0 });
    return this;
  }

  /** Fail the next `times` calls of `operation` (default 1) before they reach the store. */
  failNext(operation: BlobOperation, times = 1, code: ErrorCode = "FAULT_INJECTED"): this {
    return this.add({ operations: [operation], times, code });
  }

  clear(): void {
    this.rules = [];
  }

  /** The rule that applies to this call (and count the hit), if any. */
  match(info: CallInfo): FaultRule | undefined {
    this.calls.push({ operation: info.operation, key: info.key });
    for (const rule of this.rules) {
      if (rule.times !== undefined && rule.hits >= rule.times) continue;
      // A `put` rule applies to a `putMany` too (the same bodies, handed over at once), and a
      // key rule to any of its keys.
      const operation =
        info.operation === "putMany" && rule.operations?.includes("put") ? "put" : info.operation;
      if (rule.operations && !rule.operations.includes(operation)) continue;
      if (rule.keyMatches && !(info.keys ?? [info.key]).some((k) => rule.keyMatches?.(k))) continue;
      rule.hits++;
      return rule;
    }
    return undefined;
  }
}

export function withFaults(store: BlobStore, controller: FaultController): BlobStore {
  return wrapBlobStore(store, async (info, call) => {
    const rule = controller.match(info);
    if (!rule) return call(info.signal);
    if (rule.delayMs) await new Promise((r) => setTimeout(r, rule.delayMs));
    const fault = () =>
      new KuraError(rule.code ?? "FAULT_INJECTED", `injected fault in blob.${info.operation}`, {
        operation: `blob.${info.operation}`,
        context: { key: info.key },
      });
    if (rule.code === undefined && rule.when === undefined && rule.delayMs !== undefined)
      return call(info.signal);
    if (rule.when === "after") {
      await call(info.signal);
      throw fault();
    }
    throw fault();
  });
}
