/**
 * One tenant's view of Kura (TEN-1): the domains, each bound to the tenant and the actor the
 * audit log records. `kura.tenant(id)` hands these out; nothing reached through one can touch
 * another tenant's data.
 */
import { assertValidId } from "../core/keys.js";
import type { EngineContext } from "../engine/context.js";
import type { MailSearchResult, SearchOptions, SearchResult, SearchService } from "../engine/search.js";
import type { AuditEntry, ChangeRecord, Usage } from "../ports/catalog.js";
import { Buckets } from "./buckets.js";
import { Chats } from "./chats.js";
import { KvNamespace, tenantKvPrefix } from "./kv.js";
import { LegalHolds } from "./legal-holds.js";
import { Mailboxes } from "./mail.js";
import { Memories, type MemoriesContext } from "./memories.js";
import { Messages } from "./messages.js";
import { MultipartUploads } from "./multipart.js";
import { Objects } from "./objects.js";
import { Sessions } from "./sessions.js";
import { ConfigStore, Drafts, StateCache, type StateContext } from "./state.js";
import { Uploads } from "./uploads.js";
import { VectorCollections, type VectorsContext } from "./vectors.js";

export class TenantScope {
  readonly messages: Messages;
  /** The chats appends created, in id order (MSG-4). */
  readonly chats: Chats;
  readonly objects: Objects;
  /** Mail messages in the tenant's mailboxes (MAIL-1). */
  readonly mail: Mailboxes;
  /** Session metadata (KV, with TTL) and session files (blob store) — SESS-1. */
  readonly sessions: Sessions;
  /** Config values and feature flags, with change notification — SESS-2. */
  readonly config: ConfigStore;
  /** Workspace drafts saved by compare-and-set — SESS-2. */
  readonly drafts: Drafts;
  /** Computed values with a TTL — SESS-2. */
  readonly cache: StateCache;

  constructor(
    private readonly ctx: EngineContext,
    readonly id: string,
    private readonly state: StateContext,
    /** Who acts: recorded in the audit log of every mutation (SEC-3). */
    readonly actor: string,
    private readonly searchService: SearchService,
    private readonly vectorsContext: VectorsContext,
    private readonly memoriesContext: () => MemoriesContext,
  ) {
    this.messages = new Messages(ctx, id, actor);
    this.chats = new Chats(ctx, id);
    this.objects = new Objects(ctx, id, actor);
    this.mail = new Mailboxes(ctx, id, actor);
    this.sessions = new Sessions(state, id);
    this.config = new ConfigStore(state, id);
    this.drafts = new Drafts(state, id);
    this.cache = new StateCache(state, id);
  }

  /** The general-purpose KV API of one namespace (`/v1/kv/{namespace}/…`): keys `{tenant}:kv:{namespace}:{key}`. */
  kv(namespace: string): KvNamespace {
    assertValidId(namespace, "kv namespace", "kv");
    return new KvNamespace(this.state.kv, `${tenantKvPrefix(this.id)}kv:${namespace}:`);
  }

  /**
   * Full-text search over this tenant's messages (SRCH-1/2), ranked, with highlighted snippets;
   * `degraded: true` when the index was unavailable and the catalog was scanned (SRCH-3).
   */
  search(q: string, options?: SearchOptions): Promise<SearchResult> {
    return this.searchService.search(this.id, q, options);
  }

  /** Full-text search of the tenant's mail: subject, addresses and text body (MAIL-1, SRCH-1). */
  searchMail(
    q: string,
    options?: {
      mailboxId?: string;
      limit?: number;
      cursor?: string;
      consistent?: boolean;
      consistentTimeoutMs?: number;
    },
  ): Promise<MailSearchResult> {
    return this.searchService.searchMail(this.id, q, options);
  }

  /** This tenant's vector collections (VEC-1): `{dimensions, metric}` indexes of its own vectors. */
  get vectors(): VectorCollections {
    return new VectorCollections(this.vectorsContext, this.id);
  }

  /** Resumable uploads (API-6, tus) into this tenant's objects and session files. */
  get uploads(): Uploads {
    return new Uploads(this.ctx, this.state.uploads, this.id, this.objects, this.sessions);
  }

  /** The S3 endpoint's buckets (API-7): the first segments of this tenant's object keys. */
  get buckets(): Buckets {
    return new Buckets(this.state.kv, this.id, this.objects, this.multipart, this.ctx.clock);
  }

  /** The S3 endpoint's multipart uploads (API-7), completed into this tenant's objects. */
  get multipart(): MultipartUploads {
    return new MultipartUploads(this.ctx, this.state.kv, this.id, this.objects);
  }

  /** The users' memories of this tenant, embedded and searchable by similarity (MEM-1). */
  /** Legal holds (LIFE-1): what they name is never purged, expired or erased. */
  get legalHolds(): LegalHolds {
    return new LegalHolds(this.ctx, this.id, this.actor);
  }

  get memories(): Memories {
    return new Memories(this.memoriesContext(), this.id);
  }

  /** Bytes, objects and messages stored by this tenant (TEN-4). */
  usage(): Promise<Usage> {
    return this.ctx.catalog.usage(this.id);
  }

  /** This tenant's audit log (SEC-3): every mutation, oldest first, from `since` (ms), at most `limit`. */
  audit(options: { since?: number; limit?: number } = {}): Promise<AuditEntry[]> {
    return this.ctx.catalog.auditLog(this.id, {
      limit: options.limit ?? 100,
      ...(options.since === undefined ? {} : { since: options.since }),
    });
  }

  /**
   * This tenant's change feed (CONS-2): its events after position `after` (the last one seen;
   * without it, from the oldest event retained), oldest first. Positions count this tenant's
   * events only — 1, 2, 3, … in commit order, no gaps. Events every projector has passed are
   * pruned after `outbox.retention_hours` (OUT-1): an `after` whose next events are gone fails
   * with CHANGES_CURSOR_EXPIRED instead of skipping them.
   */
  changes(options: { after?: number; limit?: number } = {}): Promise<ChangeRecord[]> {
    return this.ctx.catalog.readChanges(this.id, {
      limit: options.limit ?? 100,
      ...(options.after === undefined ? {} : { after: options.after }),
    });
  }

  /** The last position pruned from this tenant's feed (0 if none): a reader may resume from it. */
  changesHorizon(): Promise<number> {
    return this.ctx.catalog.changesHorizon(this.id);
  }

  /** Read a content URL (`local://…`, `s3://…`) — only this tenant's keys (MSG-6). */
  readUrl(url: string): Promise<Buffer> {
    return this.ctx.urls.read(url, this.id);
  }
}
