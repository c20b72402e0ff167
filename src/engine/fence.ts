/**
 * The fencing token of the job running in this async context (DIST-1, ADR 0039): every catalog
 * batch a job commits through the group committer carries a `checkLease` with it, so a node
 * whose lease passed to another (it stalled past the lease's lifetime) commits nothing more.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { CatalogOp } from "../ports/catalog.js";

export interface Fence {
  /** The lease: `job:<name>`. */
  name: string;
  owner: string;
  token: number;
  clock: () => number;
}

const current = new AsyncLocalStorage<Fence>();

/** Run `work` with its commits fenced by `fence`. */
export function withFence<T>(fence: Fence, work: () => Promise<T>): Promise<T> {
  return current.run(fence, work);
}

/** The check a batch committed now must carry, or undefined outside a fenced job. */
export function fenceCheck(): CatalogOp | undefined {
  const f = current.getStore();
  return f && { op: "checkLease", name: f.name, owner: f.owner, token: f.token, now: f.clock() };
}
