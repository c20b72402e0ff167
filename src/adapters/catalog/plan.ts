/**
 * Turns a batch's operations into steps an adapter can run fast, without changing the result:
 *
 * - Runs of *append* operations (ensureTenant, touchChat, insertMessage, putBlobRef,
 *   appendOutbox, appendAudit, addUsage) touch disjoint tables and depend on nothing read in the
 *   batch, so a run becomes one `rows` step: rows grouped by table (PostgreSQL inserts each
 *   group with one multi-row statement), order kept within each table (outbox and audit order).
 * - Within a run, touches of one chat fold into one (created at the first touch, last message
 *   at the latest), tenants into one, and usage deltas into one row per tenant (exact sums).
 * - Every other operation reads or changes existing rows and stays a single `op` step, in
 *   place, so the runs before and after it keep their order relative to it.
 */
import { KuraError } from "../../core/errors.js";
import type {
  AuditEntry,
  BlobRefRow,
  CatalogOp,
  MessageRow,
  OutboxEvent,
  UsageDelta,
} from "../../ports/catalog.js";
import { MAIL_OPS } from "./mail.js";

export interface ChatTouch {
  tenantId: string;
  chatId: string;
  createdAt: number;
  lastMessageAt: number;
}

export interface TenantEnsure {
  tenantId: string;
  createdAt: number;
}

export interface RowsStep {
  kind: "rows";
  tenants: TenantEnsure[];
  chats: ChatTouch[];
  messages: MessageRow[];
  blobRefs: BlobRefRow[];
  outbox: OutboxEvent[];
  audit: AuditEntry[];
  usage: UsageDelta[];
}

export type SingleOp = Exclude<
  CatalogOp,
  {
    op:
      | "ensureTenant"
      | "touchChat"
      | "insertMessage"
      | "putBlobRef"
      | "appendOutbox"
      | "appendAudit"
      | "addUsage";
  }
>;

export type PlanStep = RowsStep | { kind: "op"; op: SingleOp };

const APPEND_OPS = new Set<string>([
  "ensureTenant",
  "touchChat",
  "insertMessage",
  "putBlobRef",
  "appendOutbox",
  "appendAudit",
  "addUsage",
]);
const SINGLE_OPS = new Set<string>([
  "addMessageVersion",
  "setMessageDeleted",
  "deleteMessage",
  "putObject",
  "deleteObject",
  "deleteBlobRef",
  // Reads the usage the batch's rows just added: after them, in its own savepoint.
  "checkQuota",
  // The lifecycle's (LIFE-1): an archived body's new key, legal holds and their check.
  "moveMessageBody",
  "insertLegalHold",
  "deleteLegalHold",
  "checkNotHeld",
  // A job's writes carry the fencing token of its lease (`leases.ts`).
  "checkLease",
  // Mail rows (MAIL-1, `mail.ts`).
  ...MAIL_OPS,
]);

/** True when every operation is an append (such batches may be merged across a group). */
export function isAppendOnly(ops: readonly CatalogOp[]): boolean {
  return ops.every((o) => APPEND_OPS.has(o.op));
}

class RunBuilder {
  private readonly tenants = new Map<string, TenantEnsure>();
  private readonly chats = new Map<string, ChatTouch>();
  private readonly usage = new Map<string, UsageDelta>();
  readonly messages: MessageRow[] = [];
  readonly blobRefs: BlobRefRow[] = [];
  readonly outbox: OutboxEvent[] = [];
  readonly audit: AuditEntry[] = [];
  size = 0;

  add(op: CatalogOp): void {
    this.size++;
    switch (op.op) {
      case "ensureTenant":
        if (!this.tenants.has(op.tenantId))
          this.tenants.set(op.tenantId, { tenantId: op.tenantId, createdAt: op.at });
        return;
      case "touchChat": {
        // JSON of the pair: no separator character can make two pairs collide.
        const key = JSON.stringify([op.tenantId, op.chatId]);
        const seen = this.chats.get(key);
        if (seen) seen.lastMessageAt = Math.max(seen.lastMessageAt, op.at);
        else
          this.chats.set(key, {
            tenantId: op.tenantId,
            chatId: op.chatId,
            createdAt: op.at,
            lastMessageAt: op.at,
          });
        return;
      }
      case "addUsage": {
        const d = op.delta;
        const seen = this.usage.get(d.tenantId);
        if (seen) {
          seen.bytes += d.bytes;
          seen.objects += d.objects;
          seen.messages += d.messages;
        } else {
          this.usage.set(d.tenantId, {
            tenantId: d.tenantId,
            bytes: d.bytes,
            objects: d.objects,
            messages: d.messages,
          });
        }
        return;
      }
      case "insertMessage":
        this.messages.push(op.row);
        return;
      case "putBlobRef":
        this.blobRefs.push(op.row);
        return;
      case "appendOutbox":
        this.outbox.push(op.event);
        return;
      case "appendAudit":
        this.audit.push(op.entry);
        return;
      default:
        throw new Error(`not an append op: ${op.op}`);
    }
  }

  build(): RowsStep {
    // Sorted so concurrent PostgreSQL transactions lock chat and tenant rows in one order.
    const byKey = <T>(m: Map<string, T>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      kind: "rows",
      tenants: byKey(this.tenants).map(([, v]) => v),
      chats: byKey(this.chats).map(([, v]) => v),
      messages: this.messages,
      blobRefs: this.blobRefs,
      outbox: this.outbox,
      audit: this.audit,
      usage: [...this.usage.values()].filter((u) => u.bytes !== 0 || u.objects !== 0 || u.messages !== 0),
    };
  }
}

function checkDelta(d: UsageDelta): void {
  for (const v of [d.bytes, d.objects, d.messages]) {
    if (!Number.isSafeInteger(v)) {
      throw new KuraError("INVALID_ARGUMENT", "usage deltas must be safe integers", {
        operation: "catalog.commit",
        context: { tenantId: d.tenantId },
      });
    }
  }
}

/** Plan one batch (or several append-only batches concatenated). Throws INVALID_ARGUMENT on an unknown op. */
export function planOps(ops: readonly CatalogOp[]): PlanStep[] {
  const steps: PlanStep[] = [];
  let run = new RunBuilder();
  const flush = () => {
    if (run.size > 0) steps.push(run.build());
    run = new RunBuilder();
  };
  for (const op of ops) {
    const kind = (op as { op?: unknown } | null)?.op;
    if (typeof kind === "string" && APPEND_OPS.has(kind)) {
      if (op.op === "addUsage") checkDelta(op.delta);
      run.add(op);
    } else if (typeof kind === "string" && SINGLE_OPS.has(kind)) {
      flush();
      steps.push({ kind: "op", op: op as SingleOp });
    } else {
      throw new KuraError("INVALID_ARGUMENT", `unknown catalog operation ${JSON.stringify(kind)}`, {
        operation: "catalog.commit",
      });
    }
  }
  flush();
  return steps;
}
