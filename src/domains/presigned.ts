/**
 * Kura-signed presigned URLs (BLOB-5 for stores of local files): what a verified URL names and
 * what it lets its holder do. A GET/HEAD URL names a stored object or session file to read; a
 * PUT URL names the user object (`{tenant}/objects/{key}`) or session file
 * (`{tenant}/sessions/{id}/{path}`) its body becomes, written through that tenant's domain like
 * any other write. The key layout is known here, not by the HTTP routes.
 */
import { KuraError } from "../core/errors.js";
import { ID_PATTERN } from "../core/keys.js";
import { type PresignClaims, verifyPresignedRequest } from "../core/presign.js";
import type { BlobBody, BlobInfo, BlobStore, ByteRange, GetResult } from "../ports/blob-store.js";
import type { ObjectInfo, Objects } from "./objects.js";
import type { Sessions } from "./sessions.js";

/** A session file named by a key after its tenant: `sessions/{id}/{path}`. */
export function sessionFileOf(rest: string): { sessionId: string; path: string } | undefined {
  const m = /^sessions\/([^/]+)\/(.+)$/s.exec(rest);
  return m ? { sessionId: m[1] as string, path: m[2] as string } : undefined;
}

export interface PresignedDownload {
  /** The stored key the URL names. */
  key: string;
  head(): Promise<BlobInfo>;
  get(range?: ByteRange): Promise<GetResult>;
}

export type PresignedUpload =
  | { kind: "object"; object: ObjectInfo }
  | { kind: "session-file"; file: { path: string; size: number; sha256: string } };

export interface PresignedDeps {
  /** The secret Kura signs with; undefined when the store's backend serves its own URLs. */
  secret: Buffer | undefined;
  clock: () => number;
  store: BlobStore;
  /** Where session files live (the store itself, or a directory of their own). */
  sessionFiles: BlobStore;
  tenant(tenantId: string): { objects: Objects; sessions: Sessions };
}

export class PresignedUrls {
  constructor(private readonly deps: PresignedDeps) {}

  /** The object or session file a presigned GET URL names (also for HEAD), once verified. */
  download(method: "GET" | "HEAD", url: string, now = this.deps.clock()): PresignedDownload {
    const claims = this.verify(method, url, now);
    if (claims.method !== "GET") throw invalid("method does not match");
    const slash = claims.key.indexOf("/");
    const store = sessionFileOf(claims.key.slice(slash + 1)) ? this.deps.sessionFiles : this.deps.store;
    return {
      key: claims.key,
      head: () => store.head(claims.key),
      get: (range) => store.get(claims.key, range ? { range } : {}),
    };
  }

  /** Stores `body` where a presigned PUT URL says, once verified; `contentType` must be the signed one. */
  async upload(
    url: string,
    body: BlobBody,
    contentType: string | undefined,
    now = this.deps.clock(),
  ): Promise<PresignedUpload> {
    const claims = this.verify("PUT", url, now);
    const slash = claims.key.indexOf("/");
    const tenantId = claims.key.slice(0, slash);
    const rest = claims.key.slice(slash + 1);
    const session = sessionFileOf(rest);
    if (slash < 0 || !ID_PATTERN.test(tenantId) || (!rest.startsWith("objects/") && !session))
      throw invalid("not an upload URL");
    if (claims.contentType !== undefined && contentType !== claims.contentType)
      throw invalid("Content-Type differs from the signed one");
    const tenant = this.deps.tenant(tenantId);
    const options = contentType ? { contentType } : {};
    if (session)
      return {
        kind: "session-file",
        file: await tenant.sessions.putFile(session.sessionId, session.path, body, options),
      };
    return { kind: "object", object: await tenant.objects.put(rest.slice("objects/".length), body, options) };
  }

  private verify(method: string, url: string, now: number): PresignClaims {
    // This backend serves its own presigned URLs: Kura never signed this one.
    if (!this.deps.secret) throw invalid("not signed by this server");
    return verifyPresignedRequest(this.deps.secret, { method, url }, now);
  }
}

function invalid(why: string): KuraError {
  return new KuraError("PRESIGN_INVALID", `presigned URL rejected: ${why}`, { operation: "presign.verify" });
}
