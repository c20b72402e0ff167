/**
 * The lifecycle's report as the transports give it (LIFE-1): `POST /v1/admin/lifecycle:run`
 * answers it and `kura lifecycle run --json` prints it, snake_case like the rest of the API.
 * The engine itself is `engine/lifecycle.ts`, run through `Kura.runLifecycle`.
 */
import type { LifecycleReport } from "../engine/lifecycle.js";

export type { LifecycleReport };

/** A report as `POST /v1/admin/lifecycle:run` answers it and `kura lifecycle run --json` prints it. */
export function lifecycleReportJson(r: LifecycleReport) {
  const c = r.counts;
  return {
    dry_run: r.dryRun,
    at: new Date(r.at).toISOString(),
    counts: {
      messages_expired: c.messagesExpired,
      messages_purged: c.messagesPurged,
      messages_archived: c.messagesArchived,
      objects_archived: c.objectsArchived,
      kv_expired: c.kvExpired,
      session_files_expired: c.sessionFilesExpired,
      held: c.held,
      failed: c.failed,
    },
  };
}
