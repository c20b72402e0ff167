/**
 * Mail storage (MAIL-1, seed 001): RFC 5322 messages delivered into a tenant's mailboxes.
 *
 * A delivery is stored immutably, byte for byte, as `{tenant}/{mailboxId}/{id}.eml`, and each
 * attachment (decoded) as `{tenant}/{mailboxId}/{id}/attachments/{attachmentId}`; the catalog
 * row holds the decoded envelope, flags, thread and what was malformed. Everything goes through
 * the write protocol: the bodies (each with its ref row), then one batch with the row, a
 * `mail.*` event (the full-text projector indexes subject, addresses and text under scope
 * `mail`), the audit entry and usage.
 *
 * A copy is a new row naming the same bodies (nothing is copied); a move changes the row's
 * mailbox. A delete drops the bodies only with the last row naming them: the catalog checks,
 * under the body's ref row lock, that the row it deletes is (or is not) the last, and a
 * delete whose guess was overtaken by a copy or another delete is described again.
 * Flags change in the catalog only.
 */
import type { Readable } from "node:stream";
import { sha256Hex } from "../core/checksum.js";
import { decodeCursor, encodeCursor } from "../core/cursor.js";
import { isKuraError, KuraError } from "../core/errors.js";
import { newMessageId } from "../core/ids.js";
import { assertValidId } from "../core/keys.js";
import { mailAttachmentKey, mailBodyKey, RESERVED_KEY_SEGMENTS } from "../core/mail-keys.js";
import { toMs } from "../core/time.js";
import { type EngineContext, storeFor } from "../engine/context.js";
import type { Change } from "../engine/write-protocol.js";
import type { MailAddress, MailAttachment, MailRow } from "../ports/mail-catalog.js";
import { type ParsedMailFacts, parseMail } from "./mail-parse.js";

/** One message's raw size when the tenant's tier sets no `max_mail_bytes`. */
export const DEFAULT_MAX_MAIL_BYTES = 25 * 1024 * 1024;
/** Flags a message may carry: IMAP system flags (`\Seen`) and keywords. */
const FLAG = /^\\?[A-Za-z0-9$_.-]{1,64}$/;
const MAX_FLAGS = 64;
/** Rows read per page while a `?flag=` filter skips non-matching ones. */
const SCAN_PAGE = 500;
/** Most rows one listing reads to fill a filtered page. */
const SCAN_BUDGET = 5_000;
/** Describing a delete or flag change again after the catalog saw it overtaken. */
const RETRIES = 8;

export interface MailInfo {
  id: string;
  mailboxId: string;
  messageId: string | null;
  subject: string | null;
  from: MailAddress | null;
  to: MailAddress[];
  cc: MailAddress[];
  /** The `Date` header, ISO 8601; null when missing or unreadable. */
  date: string | null;
  receivedAt: string;
  size: number;
  sha256: string;
  flags: string[];
  attachments: Array<{
    id: string;
    filename: string | null;
    contentType: string;
    disposition: string;
    contentId: string | null;
    size: number;
    sha256: string;
  }>;
  threadId: string;
  inReplyTo: string | null;
  references: string[];
  headers: Record<string, string>;
  problems: string[];
}

/** A byte range of a body: `end` inclusive, absent = to the end. */
export interface ByteRange {
  start: number;
  end?: number;
}

export interface MailPage {
  items: MailInfo[];
  nextCursor: string | undefined;
}

const notFound = (mailboxId: string, id: string, operation: string) =>
  new KuraError("MAIL_NOT_FOUND", `no mail message ${id} in mailbox ${mailboxId}`, {
    operation,
    context: { mailboxId, id },
  });

const stale = (e: unknown) => isKuraError(e) && e.code === "CATALOG_STALE_VERSION";

/** The thread of a Message-ID nobody stored yet: a stable id from the id itself. */
const threadOf = (headerId: string) => sha256Hex(headerId).slice(0, 32);

export class Mailboxes {
  constructor(
    private readonly ctx: EngineContext,
    private readonly tenantId: string,
    private readonly actor = "system",
  ) {}

  /**
   * Store a delivered message in `mailboxId` (created by its first message). `raw` is read up
   * to the tenant's `max_mail_bytes` (PAYLOAD_TOO_LARGE past it); MAIL_UNPARSEABLE when it is
   * no message at all; QUOTA_EXCEEDED past `max_mailbox_bytes` or the tenant's storage quotas.
   */
  async store(mailboxId: string, raw: Uint8Array | AsyncIterable<Uint8Array>): Promise<MailInfo> {
    const op = "mail.store";
    checkMailboxId(mailboxId, op);
    const limits = await this.ctx.tenancy.limits(this.tenantId);
    const maxMail = limits.max_mail_bytes ?? DEFAULT_MAX_MAIL_BYTES;
    const bytes = await readLimited(raw, maxMail);
    const facts = await parseMail(bytes);
    const attachmentBytes = facts.attachments.reduce((n, a) => n + a.content.length, 0);
    await this.ctx.tenancy.checkWrite(this.tenantId, {
      bytes: bytes.length + attachmentBytes,
      objects: 1 + facts.attachments.length,
    });
    const maxMailbox = limits.max_mailbox_bytes;
    if (maxMailbox !== undefined) {
      const used = await this.ctx.catalog.mailboxBytes(this.tenantId, mailboxId);
      if (used + bytes.length > maxMailbox)
        throw mailboxFull(this.tenantId, mailboxId, used + bytes.length, maxMailbox);
    }
    const now = this.ctx.clock();
    const id = newMessageId(now);
    const row = await this.describe(mailboxId, id, bytes, facts, now);
    const changes: Change[] = [
      {
        kind: "body",
        row: { tenantId: this.tenantId, blobKey: row.blobKey, refKind: "mail" },
        data: bytes,
        contentType: "message/rfc822",
      },
    ];
    facts.attachments.forEach((a, i) => {
      changes.push({
        kind: "body",
        row: {
          tenantId: this.tenantId,
          blobKey: (row.attachments[i] as MailAttachment).blobKey,
          refKind: "mail-attachment",
        },
        data: a.content,
        contentType: a.contentType,
      });
    });
    changes.push({
      kind: "catalog",
      op: {
        op: "insertMail",
        tenantId: this.tenantId,
        row,
        ...(maxMailbox !== undefined ? { maxMailboxBytes: maxMailbox } : {}),
      },
      event: "mail.received",
      entityId: id,
      payload: { mailbox_id: mailboxId, size: bytes.length },
      action: "mail.store",
      details: { mailbox_id: mailboxId, size: bytes.length, attachments: row.attachments.length },
    });
    await this.ctx.protocol.write({
      at: now,
      actor: this.actor,
      ops: [{ op: "ensureTenant", tenantId: this.tenantId, at: now }],
      changes,
    });
    return info(row);
  }

  /** The row a delivery records (store id, sizes and checksums of the bytes about to be written). */
  private async describe(
    mailboxId: string,
    id: string,
    raw: Buffer,
    facts: ParsedMailFacts,
    now: number,
  ): Promise<MailRow> {
    const attachments: MailAttachment[] = facts.attachments.map((a, i) => ({
      id: String(i + 1),
      filename: a.filename,
      contentType: a.contentType,
      disposition: a.disposition,
      contentId: a.contentId,
      sizeBytes: a.content.length,
      checksum: sha256Hex(a.content),
      storeId: this.ctx.storeId,
      blobKey: mailAttachmentKey(this.tenantId, mailboxId, id, i + 1),
    }));
    return {
      tenantId: this.tenantId,
      id,
      mailboxId,
      storeId: this.ctx.storeId,
      blobKey: mailBodyKey(this.tenantId, mailboxId, id),
      sizeBytes: raw.length,
      checksum: sha256Hex(raw),
      headerMessageId: facts.headerMessageId,
      subject: facts.subject,
      from: facts.from,
      to: facts.to,
      cc: facts.cc,
      sentAt: facts.sentAt,
      receivedAt: now,
      flags: [],
      attachments,
      threadId: await this.threadIdFor(facts, id),
      inReplyTo: facts.inReplyTo,
      references: facts.references,
      headers: facts.headers,
      problems: facts.problems,
      searchText: facts.searchText,
    };
  }

  /**
   * A message's thread: the thread of the first stored message it names (References, root
   * first, then In-Reply-To); else the one its root's Message-ID gives (so replies stored before
   * their parent still meet it); else its own.
   */
  private async threadIdFor(facts: ParsedMailFacts, id: string): Promise<string> {
    const parents = [...facts.references, ...(facts.inReplyTo ? [facts.inReplyTo] : [])];
    if (parents.length > 0) {
      const known = await this.ctx.catalog.mailThreadsOf(this.tenantId, parents);
      for (const p of parents) {
        const t = known.get(p);
        if (t !== undefined) return t;
      }
      return threadOf(parents[0] as string);
    }
    return threadOf(facts.headerMessageId ?? id);
  }

  async get(mailboxId: string, id: string): Promise<MailInfo> {
    return info(await this.row(mailboxId, id, "mail.get"));
  }

  /** The exact bytes delivered, verified against the SHA-256 recorded at delivery. */
  async raw(
    mailboxId: string,
    id: string,
    options: { range?: ByteRange } = {},
  ): Promise<{ info: MailInfo; body: Readable; range: { start: number; end: number } | undefined }> {
    const row = await this.row(mailboxId, id, "mail.raw");
    const got = await storeFor(this.ctx, row.storeId).get(row.blobKey, {
      expectedSha256: row.checksum,
      ...(options.range ? { range: options.range } : {}),
    });
    return { info: info(row), body: got.body, range: got.range };
  }

  /** One attachment's decoded bytes. */
  async attachment(
    mailboxId: string,
    id: string,
    attachmentId: string,
    options: { range?: ByteRange } = {},
  ): Promise<{
    attachment: MailInfo["attachments"][number];
    body: Readable;
    range: { start: number; end: number } | undefined;
  }> {
    const row = await this.row(mailboxId, id, "mail.attachment");
    const a = row.attachments.find((x) => x.id === attachmentId);
    if (!a)
      throw new KuraError(
        "MAIL_ATTACHMENT_NOT_FOUND",
        `mail message ${id} has no attachment ${attachmentId}`,
        {
          operation: "mail.attachment",
          context: { mailboxId, id, attachmentId: attachmentId.slice(0, 64) },
        },
      );
    const got = await storeFor(this.ctx, a.storeId).get(a.blobKey, {
      expectedSha256: a.checksum,
      ...(options.range ? { range: options.range } : {}),
    });
    return { attachment: attachmentInfo(a), body: got.body, range: got.range };
  }

  /**
   * A mailbox's messages, oldest first, a page at a time; `since` (ISO time or ms) keeps those
   * received at or after it, `flag` those carrying the flag (`\Seen`, a keyword).
   */
  async list(
    mailboxId: string,
    options: { since?: string | number; flag?: string; limit?: number; cursor?: string } = {},
  ): Promise<MailPage> {
    const op = "mail.list";
    assertValidId(mailboxId, "mailbox id", op);
    const limit = checkLimit(options.limit, op);
    const since = options.since === undefined ? undefined : toMs(options.since, "since", op);
    if (options.flag !== undefined) checkFlag(options.flag, op);
    let after = options.cursor === undefined ? undefined : decodeMailCursor(options.cursor, op);
    const items: MailInfo[] = [];
    let scanned = 0;
    for (;;) {
      const want = options.flag === undefined ? limit + 1 : SCAN_PAGE;
      const rows = await this.ctx.catalog.listMail(this.tenantId, {
        mailboxId,
        limit: want,
        ...(after ? { after } : since !== undefined ? { since } : {}),
      });
      for (const r of rows) {
        if (since !== undefined && r.receivedAt < since) {
          after = { receivedAt: r.receivedAt, id: r.id };
          continue;
        }
        if (items.length === limit) return { items, nextCursor: encodeMailCursor(after) };
        after = { receivedAt: r.receivedAt, id: r.id };
        scanned++;
        if (options.flag !== undefined && !r.flags.includes(options.flag)) continue;
        items.push(info(r));
      }
      if (rows.length < want) return { items, nextCursor: undefined };
      // A filtered page that found too few in the budget ends short, with a cursor to go on.
      if (scanned >= SCAN_BUDGET) return { items, nextCursor: encodeMailCursor(after) };
    }
  }

  /** A thread's messages across the tenant's mailboxes, oldest first. */
  async thread(threadId: string, options: { limit?: number; cursor?: string } = {}): Promise<MailPage> {
    const op = "mail.thread";
    assertValidId(threadId, "thread id", op);
    const limit = checkLimit(options.limit, op);
    const after = options.cursor === undefined ? undefined : decodeMailCursor(options.cursor, op);
    const rows = await this.ctx.catalog.listMailThread(this.tenantId, threadId, {
      limit: limit + 1,
      ...(after ? { after } : {}),
    });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map(info),
      nextCursor:
        rows.length > limit && last
          ? encodeMailCursor({ receivedAt: last.receivedAt, id: last.id })
          : undefined,
    };
  }

  /** Add and remove flags (catalog only); the flags after the change. */
  async setFlags(
    mailboxId: string,
    id: string,
    change: { add?: readonly string[]; remove?: readonly string[] },
  ): Promise<MailInfo> {
    const op = "mail.flags";
    const add = change.add ?? [];
    const remove = change.remove ?? [];
    for (const f of [...add, ...remove]) checkFlag(f, op);
    for (let attempt = 0; ; attempt++) {
      const row = await this.row(mailboxId, id, op);
      const flags = [
        ...new Set([
          ...row.flags.filter((f) => !remove.includes(f)),
          ...add.filter((f) => !remove.includes(f)),
        ]),
      ].sort();
      if (flags.length > MAX_FLAGS)
        throw new KuraError("INVALID_ARGUMENT", `a message carries at most ${MAX_FLAGS} flags`, {
          operation: op,
        });
      if (flags.join("\n") === row.flags.join("\n")) return info(row);
      const now = this.ctx.clock();
      try {
        await this.ctx.protocol.write({
          at: now,
          actor: this.actor,
          changes: [
            {
              kind: "catalog",
              op: { op: "setMailFlags", tenantId: this.tenantId, id, flags, expect: row.flags },
              event: "mail.flags",
              entityId: id,
              payload: { mailbox_id: mailboxId },
              action: "mail.flags",
              details: { mailbox_id: mailboxId, add: [...add], remove: [...remove] },
            },
          ],
        });
        return info({ ...row, flags });
      } catch (e) {
        if (!stale(e) || attempt >= RETRIES) throw e;
      }
    }
  }

  /** A copy in `toMailboxId` naming the same bodies (nothing is copied); the new message. */
  async copy(mailboxId: string, id: string, toMailboxId: string): Promise<MailInfo> {
    const op = "mail.copy";
    checkMailboxId(toMailboxId, op);
    const row = await this.row(mailboxId, id, op);
    const maxMailbox = await this.mailboxQuota(toMailboxId, row.sizeBytes, op);
    const now = this.ctx.clock();
    const copy: MailRow = { ...row, id: newMessageId(now), mailboxId: toMailboxId };
    try {
      await this.ctx.protocol.write({
        at: now,
        actor: this.actor,
        changes: [
          {
            kind: "catalog",
            op: {
              op: "copyMail",
              tenantId: this.tenantId,
              row: copy,
              ...(maxMailbox !== undefined ? { maxMailboxBytes: maxMailbox } : {}),
            },
            event: "mail.copied",
            entityId: copy.id,
            payload: { mailbox_id: toMailboxId, from_mailbox_id: mailboxId, from_id: id },
            action: "mail.copy",
            details: { mailbox_id: toMailboxId, from_mailbox_id: mailboxId, from_id: id },
          },
        ],
      });
    } catch (e) {
      if (isKuraError(e) && e.code === "CATALOG_NOT_FOUND") throw notFound(mailboxId, id, op);
      throw e;
    }
    return info(copy);
  }

  /** Move a message to `toMailboxId` (its id stays). */
  async move(mailboxId: string, id: string, toMailboxId: string): Promise<MailInfo> {
    const op = "mail.move";
    checkMailboxId(toMailboxId, op);
    const row = await this.row(mailboxId, id, op);
    if (toMailboxId === mailboxId) return info(row);
    const maxMailbox = await this.mailboxQuota(toMailboxId, row.sizeBytes, op);
    const now = this.ctx.clock();
    try {
      await this.ctx.protocol.write({
        at: now,
        actor: this.actor,
        changes: [
          {
            kind: "catalog",
            op: {
              op: "moveMail",
              tenantId: this.tenantId,
              id,
              fromMailboxId: mailboxId,
              toMailboxId,
              ...(maxMailbox !== undefined ? { maxMailboxBytes: maxMailbox } : {}),
            },
            event: "mail.moved",
            entityId: id,
            payload: { mailbox_id: toMailboxId, from_mailbox_id: mailboxId },
            action: "mail.move",
            details: { mailbox_id: toMailboxId, from_mailbox_id: mailboxId },
          },
        ],
      });
    } catch (e) {
      if (isKuraError(e) && e.code === "CATALOG_NOT_FOUND") throw notFound(mailboxId, id, op);
      throw e;
    }
    return info({ ...row, mailboxId: toMailboxId });
  }

  /** Delete a message; its bodies go with the last message naming them. */
  async delete(mailboxId: string, id: string): Promise<void> {
    const op = "mail.delete";
    for (let attempt = 0; ; attempt++) {
      const row = await this.row(mailboxId, id, op);
      const last = (await this.ctx.catalog.countMailSharing(this.tenantId, row.blobKey)) <= 1;
      const now = this.ctx.clock();
      try {
        await this.ctx.protocol.write({
          at: now,
          actor: this.actor,
          changes: [
            {
              kind: "catalog",
              op: {
                op: "deleteMail",
                tenantId: this.tenantId,
                id,
                mailboxId,
                storeId: row.storeId,
                blobKey: row.blobKey,
                last,
              },
              ...(last
                ? {
                    drops: [
                      { storeId: row.storeId, blobKey: row.blobKey, sizeBytes: row.sizeBytes },
                      ...row.attachments.map((a) => ({
                        storeId: a.storeId,
                        blobKey: a.blobKey,
                        sizeBytes: a.sizeBytes,
                      })),
                    ],
                  }
                : {}),
              event: "mail.deleted",
              entityId: id,
              payload: { mailbox_id: mailboxId },
              action: "mail.delete",
              details: { mailbox_id: mailboxId, bodies_dropped: last },
            },
          ],
        });
        return;
      } catch (e) {
        if (isKuraError(e) && e.code === "CATALOG_NOT_FOUND") throw notFound(mailboxId, id, op);
        if (!stale(e) || attempt >= RETRIES) throw e;
      }
    }
  }

  private async mailboxQuota(mailboxId: string, adding: number, op: string): Promise<number | undefined> {
    const max = (await this.ctx.tenancy.limits(this.tenantId)).max_mailbox_bytes;
    if (max === undefined) return undefined;
    const used = await this.ctx.catalog.mailboxBytes(this.tenantId, mailboxId);
    if (used + adding > max) throw mailboxFull(this.tenantId, mailboxId, used + adding, max, op);
    return max;
  }

  private async row(mailboxId: string, id: string, operation: string): Promise<MailRow> {
    assertValidId(mailboxId, "mailbox id", operation);
    if (typeof id !== "string" || id.length > 64)
      throw notFound(mailboxId, String(id).slice(0, 64), operation);
    const row = await this.ctx.catalog.getMail(this.tenantId, id);
    if (!row || row.mailboxId !== mailboxId) throw notFound(mailboxId, id, operation);
    return row;
  }
}

function mailboxFull(
  tenantId: string,
  mailboxId: string,
  used: number,
  max: number,
  operation = "mail.store",
): KuraError {
  return new KuraError(
    "QUOTA_EXCEEDED",
    `the write would take mailbox ${mailboxId} past max_mailbox_bytes (${used} with it, limit ${max}); nothing was stored`,
    { operation, context: { tenantId, mailboxId, limit: "max_mailbox_bytes", used, max } },
  );
}

/** Reads a body into memory, refusing it (PAYLOAD_TOO_LARGE) once it passes `max` bytes. */
async function readLimited(body: Uint8Array | AsyncIterable<Uint8Array>, max: number): Promise<Buffer> {
  const tooLarge = (size: number) =>
    new KuraError(
      "PAYLOAD_TOO_LARGE",
      `the message is over the tenant's max_mail_bytes (${max}); nothing was stored`,
      {
        operation: "mail.store",
        context: { size, limit: max },
      },
    );
  if (body instanceof Uint8Array) {
    if (body.length > max) throw tooLarge(body.length);
    return Buffer.from(body.buffer, body.byteOffset, body.length);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) throw tooLarge(size);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks, size);
}

/** A mailbox id by IDS-1, and not a key segment another plane owns (`core/mail-keys.ts`). */
function checkMailboxId(mailboxId: string, operation: string): void {
  assertValidId(mailboxId, "mailbox id", operation);
  if (RESERVED_KEY_SEGMENTS.has(mailboxId))
    throw new KuraError(
      "INVALID_ARGUMENT",
      `mailbox id ${mailboxId} is reserved (${[...RESERVED_KEY_SEGMENTS].join(", ")} name Kura's own key prefixes)`,
      { operation, context: { mailboxId } },
    );
}

function checkLimit(limit: number | undefined, operation: string): number {
  const n = limit ?? 50;
  if (!Number.isSafeInteger(n) || n < 1 || n > 1000)
    throw new KuraError("INVALID_ARGUMENT", "limit must be 1…1000", { operation });
  return n;
}

function checkFlag(flag: unknown, operation: string): asserts flag is string {
  if (typeof flag !== "string" || !FLAG.test(flag))
    throw new KuraError(
      "INVALID_ARGUMENT",
      "a flag is \\Name or a keyword of letters, digits and $_.- (at most 64)",
      {
        operation,
      },
    );
}

function encodeMailCursor(after: { receivedAt: number; id: string } | undefined): string | undefined {
  return after === undefined ? undefined : encodeCursor({ k: "m1", t: after.receivedAt, i: after.id });
}

function decodeMailCursor(cursor: string, operation: string): { receivedAt: number; id: string } {
  const c = decodeCursor(cursor, { k: "m1" });
  if (c === undefined || typeof c.t !== "number" || typeof c.i !== "string")
    throw new KuraError("CURSOR_INVALID", "the cursor was not produced by this listing", { operation });
  return { receivedAt: c.t, id: c.i };
}

function attachmentInfo(a: MailAttachment): MailInfo["attachments"][number] {
  return {
    id: a.id,
    filename: a.filename,
    contentType: a.contentType,
    disposition: a.disposition,
    contentId: a.contentId,
    size: a.sizeBytes,
    sha256: a.checksum,
  };
}

function info(r: MailRow): MailInfo {
  return {
    id: r.id,
    mailboxId: r.mailboxId,
    messageId: r.headerMessageId,
    subject: r.subject,
    from: r.from,
    to: r.to,
    cc: r.cc,
    date: r.sentAt === null ? null : new Date(r.sentAt).toISOString(),
    receivedAt: new Date(r.receivedAt).toISOString(),
    size: r.sizeBytes,
    sha256: r.checksum,
    flags: r.flags,
    attachments: r.attachments.map(attachmentInfo),
    threadId: r.threadId,
    inReplyTo: r.inReplyTo,
    references: r.references,
    headers: r.headers,
    problems: r.problems,
  };
}
