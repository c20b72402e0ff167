/**
 * Encryption at rest of the tenant text the catalog holds (SEC-2): a `Catalog` in, a `Catalog`
 * out. A message's preview and metadata, a version's preview and a mail row's subject,
 * addresses, headers and search text (derived text, seed 001 §3.5) are written sealed (`core/sealed.ts`, as base64url text behind a `~kenc1:` mark; metadata as
 * `{"~kenc1": …}`) and opened again by every read that returns rows, so a shredded tenant's rows
 * answer `TENANT_KEYS_DESTROYED` (within the key ring's refresh on other nodes) even where a
 * cache would still hold a body. Ids, times, sizes and checksums stay as they are: queries,
 * ordering and the write protocol's checks need them. Text stored before encryption was on
 * reads as it is.
 */
import { KuraError } from "../core/errors.js";
import { newHeader, parseHeader, SealedDamaged, seal, unseal } from "../core/sealed.js";
import type {
  BatchOutcome,
  Catalog,
  CatalogBatch,
  CatalogOp,
  MessageRow,
  MessageVersionRow,
} from "../ports/catalog.js";
import type { DataKey, TenantKeys } from "../ports/key-provider.js";
import type { MailAddress, MailRow } from "../ports/mail-catalog.js";

const MARK = "~kenc1:";
const META = "~kenc1";

/** Read methods returning mail rows (one, a list, or undefined): their derived text is sealed too. */
const MAIL_READS = new Set(["getMail", "listMail", "listMailThread", "listTenantMail"]);

/** Read methods returning message rows (one, a list, or undefined). */
const MESSAGE_READS = new Set([
  "getMessage",
  "getMessages",
  "findMessageByIdempotencyKey",
  "history",
  "deletedMessagesBefore",
  "expiredMessages",
  "messagesToArchive",
  "listMessageVersions",
]);

export class CatalogSealer {
  constructor(private readonly keys: TenantKeys) {}

  private async key(tenantId: string): Promise<DataKey> {
    return this.keys.currentSync(tenantId) ?? (await this.keys.current(tenantId));
  }

  private sealText(key: DataKey, text: string): string {
    return (
      MARK + seal(key.key, newHeader(key.keyId, key.version), Buffer.from(text, "utf8")).toString("base64url")
    );
  }

  async openText(tenantId: string, text: string): Promise<string> {
    if (!text.startsWith(MARK)) return text;
    const bytes = Buffer.from(text.slice(MARK.length), "base64url");
    const header = parseHeader(bytes);
    if (!header) throw damaged(tenantId);
    const ref = { keyId: header.keyId, version: header.version };
    const key = this.keys.getSync(tenantId, ref) ?? (await this.keys.get(tenantId, ref));
    try {
      return unseal(key.key, header, bytes).toString("utf8");
    } catch (e) {
      if (e instanceof SealedDamaged) throw damaged(tenantId, e);
      throw e;
    }
  }

  async sealMessage(row: MessageRow): Promise<MessageRow> {
    const key = await this.key(row.tenantId);
    return {
      ...row,
      preview: this.sealText(key, row.preview),
      metadata: { [META]: this.sealText(key, JSON.stringify(row.metadata ?? {})) },
    };
  }

  async sealVersion(row: MessageVersionRow): Promise<MessageVersionRow> {
    return { ...row, preview: this.sealText(await this.key(row.tenantId), row.preview) };
  }

  async openRow<T extends MessageRow | MessageVersionRow>(row: T): Promise<T> {
    // Every row read checks the tenant's keys, sealed text or not: a shredded tenant reads nothing.
    if (await this.keys.destroyed(row.tenantId))
      throw new KuraError("TENANT_KEYS_DESTROYED", `the data keys of tenant ${row.tenantId} were destroyed`, {
        operation: "catalog.read",
        context: { tenantId: row.tenantId },
      });
    const out = { ...row, preview: await this.openText(row.tenantId, row.preview) };
    const meta = (row as MessageRow).metadata as Record<string, unknown> | undefined;
    const sealed = meta?.[META];
    if (typeof sealed === "string")
      (out as MessageRow).metadata = JSON.parse(await this.openText(row.tenantId, sealed));
    return out;
  }

  /**
   * A mail row's derived text (MAIL-1): subject, address names and addresses, decoded header
   * fields and the search text. Ids, the Message-ID and the thread stay clear: threading looks
   * them up.
   */
  async sealMail(row: MailRow): Promise<MailRow> {
    const key = await this.key(row.tenantId);
    const text = (t: string) => this.sealText(key, t);
    const address = (a: MailAddress) => ({ name: text(a.name), address: text(a.address) });
    return {
      ...row,
      subject: row.subject === null ? null : text(row.subject),
      from: row.from === null ? null : address(row.from),
      to: row.to.map(address),
      cc: row.cc.map(address),
      headers: { [META]: text(JSON.stringify(row.headers)) },
      searchText: text(row.searchText),
    };
  }

  async openMail(row: MailRow): Promise<MailRow> {
    if (await this.keys.destroyed(row.tenantId))
      throw new KuraError("TENANT_KEYS_DESTROYED", `the data keys of tenant ${row.tenantId} were destroyed`, {
        operation: "catalog.read",
        context: { tenantId: row.tenantId },
      });
    const text = (t: string) => this.openText(row.tenantId, t);
    const address = async (a: MailAddress) => ({ name: await text(a.name), address: await text(a.address) });
    const sealedHeaders = (row.headers as Record<string, unknown>)[META];
    return {
      ...row,
      subject: row.subject === null ? null : await text(row.subject),
      from: row.from === null ? null : await address(row.from),
      to: await Promise.all(row.to.map(address)),
      cc: await Promise.all(row.cc.map(address)),
      headers: typeof sealedHeaders === "string" ? JSON.parse(await text(sealedHeaders)) : row.headers,
      searchText: await text(row.searchText),
    };
  }

  async sealOp(op: CatalogOp): Promise<CatalogOp> {
    if (op.op === "insertMail" || op.op === "copyMail") return { ...op, row: await this.sealMail(op.row) };
    if (op.op === "insertMessage") return { ...op, row: await this.sealMessage(op.row) };
    if (op.op === "addMessageVersion") return { ...op, row: await this.sealVersion(op.row) };
    return op;
  }
}

/** `catalog` with message previews and metadata sealed on the way in and opened on the way out. */
export function withEncryptedCatalog(catalog: Catalog, keys: TenantKeys): Catalog {
  const sealer = new CatalogSealer(keys);
  const open = async (value: unknown): Promise<unknown> => {
    if (value === undefined || value === null) return value;
    if (Array.isArray(value)) return Promise.all(value.map((r) => sealer.openRow(r)));
    return sealer.openRow(value as MessageRow);
  };
  // Methods others put on the wrapper (health's commit observer) stay on the wrapper: defined on
  // the catalog itself they would call the wrapper again from inside it.
  const own = new Map<PropertyKey, unknown>();
  return new Proxy(catalog, {
    defineProperty(_target, prop, descriptor) {
      own.set(prop, descriptor.value);
      return true;
    },
    set(_target, prop, value) {
      own.set(prop, value);
      return true;
    },
    get(target, prop, receiver) {
      if (own.has(prop)) return own.get(prop);
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      if (prop === "commit")
        return async (batches: CatalogBatch[]): Promise<BatchOutcome[]> => {
          // A batch whose text cannot be sealed (a shredded tenant) fails alone, as a refused batch does.
          const outcomes: (BatchOutcome | undefined)[] = [];
          const sealed: CatalogBatch[] = [];
          for (const b of batches) {
            try {
              const ops: CatalogOp[] = [];
              for (const op of b.ops) ops.push(await sealer.sealOp(op));
              sealed.push({ ...b, ops });
              outcomes.push(undefined);
            } catch (e) {
              if (!(e instanceof KuraError)) throw e;
              outcomes.push({ ok: false, error: e });
            }
          }
          const applied = sealed.length > 0 ? await target.commit(sealed) : [];
          let i = 0;
          return outcomes.map((o) => o ?? (applied[i++] as BatchOutcome));
        };
      if (typeof prop === "string" && MAIL_READS.has(prop))
        return async (...args: unknown[]) => {
          const rows = await (value as (...a: unknown[]) => unknown).apply(target, args);
          if (rows === undefined || rows === null) return rows;
          if (Array.isArray(rows)) return Promise.all(rows.map((r) => sealer.openMail(r as MailRow)));
          return sealer.openMail(rows as MailRow);
        };
      if (typeof prop === "string" && MESSAGE_READS.has(prop))
        return async (...args: unknown[]) =>
          open(await (value as (...a: unknown[]) => unknown).apply(target, args));
      return value.bind(target);
    },
  });
}

function damaged(tenantId: string, cause?: unknown): KuraError {
  return new KuraError("BODY_CORRUPT", "encrypted catalog text does not authenticate", {
    operation: "catalog.read",
    context: { tenantId },
    cause,
  });
}
