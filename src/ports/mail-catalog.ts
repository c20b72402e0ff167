/**
 * The catalog's side of mail storage (MAIL-1): the mail row, the operations a batch may carry
 * for it and the reads the mail domain makes. Part of the `Catalog` port (`catalog.ts` joins
 * them in); kept apart so the port's main file stays readable.
 *
 * Behavior (checked by `test/domains/mail.test.ts` on both dialects):
 * - A mail row names its raw body (`blobKey`) and its attachments' bodies; those bodies have a
 *   ref row each (kind `mail`, `mail-attachment`), written by the write protocol. A copy is a
 *   new row naming the same bodies; the refs go (and the bodies with them) only in the batch
 *   that deletes the last row naming them.
 * - Every operation on a body's rows first locks the body's ref row, so deletes and copies of
 *   rows sharing a body are applied one after another on PostgreSQL as on SQLite: a delete that
 *   says it removes the last row (or not) fails with `CATALOG_STALE_VERSION` when that is no
 *   longer true, and a copy of a body whose ref is gone fails with `CATALOG_NOT_FOUND`.
 */

/** An attachment as stored: its body is `{tenant}/{mailboxId}/{id}/attachments/{attachmentId}`. */
export interface MailAttachment {
  id: string;
  filename: string | null;
  contentType: string;
  /** `attachment` or `inline`. */
  disposition: string;
  /** Content-ID without angle brackets (inline images referenced as `cid:`), or null. */
  contentId: string | null;
  sizeBytes: number;
  checksum: string;
  storeId: string;
  blobKey: string;
}

/** A decoded address (`name` decoded from RFC 2047 encoded words). */
export interface MailAddress {
  name: string;
  address: string;
}

export interface MailRow {
  tenantId: string;
  /** UUIDv7, unique within the tenant (a move keeps it; a copy gets a new one). */
  id: string;
  mailboxId: string;
  storeId: string;
  /** The raw message exactly as delivered. */
  blobKey: string;
  sizeBytes: number;
  checksum: string;
  /** The `Message-ID` header without angle brackets, or null. */
  headerMessageId: string | null;
  subject: string | null;
  from: MailAddress | null;
  to: MailAddress[];
  cc: MailAddress[];
  /** The `Date` header (ms), or null when missing or unreadable. */
  sentAt: number | null;
  receivedAt: number;
  flags: string[];
  attachments: MailAttachment[];
  /** The thread's id: shared by a message and its replies (References / In-Reply-To). */
  threadId: string;
  inReplyTo: string | null;
  references: string[];
  /** Decoded header fields (name in lower case → value). */
  headers: Record<string, string>;
  /** What was malformed but accepted (missing date, broken encoded word, unknown charset, …). */
  problems: string[];
  /** Derived text for the full-text index: subject, addresses and the text body (SEC-2). */
  searchText: string;
}

/**
 * With `maxMailboxBytes` (`max_mailbox_bytes`), an insert, copy or move then fails the batch
 * with `QUOTA_EXCEEDED` if the target mailbox's rows hold more raw bytes than that. Exact against
 * concurrent commits as `checkQuota` is (the batch's events hold the tenant's feed row first).
 */
interface MailboxQuota {
  maxMailboxBytes?: number;
}

/** The operations of a catalog batch about mail rows. */
export type MailOp =
  /** Inserts a mail row; `CATALOG_DUPLICATE` if the id exists. */
  | ({ op: "insertMail"; tenantId: string; row: MailRow } & MailboxQuota)
  /**
   * Inserts `row`, a copy naming the bodies of an existing row (the same `blobKey`): locks the
   * body's ref row first; `CATALOG_NOT_FOUND` when that ref is gone (the last row naming it was
   * deleted meanwhile).
   */
  | ({ op: "copyMail"; tenantId: string; row: MailRow } & MailboxQuota)
  /** Moves a row to another mailbox; `CATALOG_NOT_FOUND` unless it is in `fromMailboxId`. */
  | ({
      op: "moveMail";
      tenantId: string;
      id: string;
      fromMailboxId: string;
      toMailboxId: string;
    } & MailboxQuota)
  /**
   * Deletes a row (in `mailboxId`, else `CATALOG_NOT_FOUND`), after locking its body's ref row;
   * `CATALOG_STALE_VERSION` unless, once it is gone, no other row names `blobKey` (`last: true`)
   * or some other row still does (`last: false`).
   */
  | {
      op: "deleteMail";
      tenantId: string;
      id: string;
      mailboxId: string;
      storeId: string;
      blobKey: string;
      last: boolean;
    }
  /** Replaces a row's flags if they are still `expect`; `CATALOG_STALE_VERSION` otherwise. */
  | { op: "setMailFlags"; tenantId: string; id: string; flags: string[]; expect: string[] };

/** A page of a mailbox's rows, oldest first (`receivedAt`, then id). */
export interface MailListQuery {
  mailboxId: string;
  /** Received at or after (ms). */
  since?: number;
  /** The last row of the previous page. */
  after?: { receivedAt: number; id: string };
  limit: number;
}

export interface MailCatalogReads {
  /** The row of a tenant's mail `id`, whatever its mailbox. */
  getMail(tenantId: string, id: string): Promise<MailRow | undefined>;
  /** A mailbox's rows in (receivedAt, id) order, after `after`. */
  listMail(tenantId: string, query: MailListQuery): Promise<MailRow[]>;
  /** A thread's rows in (receivedAt, id) order, across mailboxes. */
  listMailThread(
    tenantId: string,
    threadId: string,
    options: { after?: { receivedAt: number; id: string }; limit: number },
  ): Promise<MailRow[]>;
  /** The thread ids of the tenant's rows whose Message-ID is one of `headerIds`. */
  mailThreadsOf(tenantId: string, headerIds: readonly string[]): Promise<Map<string, string>>;
  /** Every tenant's mail, as (tenant, id) in that order, after `after`: the search rebuild's scan. */
  listMailKeys(options: {
    after?: { tenantId: string; id: string };
    limit: number;
  }): Promise<Array<{ tenantId: string; id: string }>>;
  /** The tenant's mail, newest id first, before `beforeId`: the degraded search's scan (SRCH-3). */
  listTenantMail(tenantId: string, options: { beforeId?: string; limit: number }): Promise<MailRow[]>;
  /** How many of the tenant's rows name the raw body `blobKey`. */
  countMailSharing(tenantId: string, blobKey: string): Promise<number>;
  /** The bytes (raw sizes) of a mailbox's rows. */
  mailboxBytes(tenantId: string, mailboxId: string): Promise<number>;
}
