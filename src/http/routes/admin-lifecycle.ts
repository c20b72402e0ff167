/**
 * `POST /v1/admin/lifecycle:run` (LIFE-1): run the lifecycle engine now — TTL expiry, purge,
 * archive, KV and session-file expiry — and answer what it did, or with `dry_run` what it would
 * do (nothing changes). For the admin identity only. A run holds the `lifecycle` job's lease:
 * 409 LIFECYCLE_RUNNING while the job or another run holds it on any node.
 */
import { z } from "zod";
import { lifecycleReportJson } from "../../domains/lifecycle.js";
import type { RouteSpec } from "../route.js";
import { adminActor } from "./admin.js";
import type { HttpDeps } from "./deps.js";

const countsSchema = z.object({
  messages_expired: z.number().int().describe("Messages whose TTL ran out, removed"),
  messages_purged: z
    .number()
    .int()
    .describe("Soft-deleted messages past retention.deleted_messages_days, removed"),
  messages_archived: z.number().int().describe("Messages whose bodies moved under {tenant}/archive/"),
  objects_archived: z.number().int().describe("Objects whose bodies moved under {tenant}/archive/"),
  kv_expired: z
    .number()
    .int()
    .nullable()
    .describe("Expired KV entries swept (stores without native TTL); null in a dry run"),
  session_files_expired: z
    .number()
    .int()
    .describe("Session files past retention.session_files_days, deleted"),
  held: z.number().int().describe("Messages due for expiry or purge that a legal hold kept"),
  failed: z.number().int().describe("Bodies the archive could not move (missing or damaged: see kura fsck)"),
});

const reportSchema = z.object({
  dry_run: z.boolean(),
  at: z.string().describe("The time the run judged against"),
  counts: countsSchema,
});

export function adminLifecycleRoutes({ kura }: HttpDeps): RouteSpec[] {
  const body = z
    .object({ dry_run: z.boolean().optional().describe("Report what a run would do, changing nothing") })
    .strict();
  const run: RouteSpec<unknown, unknown, z.infer<typeof body>> = {
    method: "POST",
    path: "/v1/admin/lifecycle:run",
    operationId: "runLifecycle",
    summary: "Run the lifecycle engine now: expiry, purge, archive (or a dry run)",
    description:
      "Runs every retention policy once and answers the count of each action. Each action is " +
      "audited (per message, object and tenant, and the run in the ~admin stream); a dry run " +
      "changes nothing and records nothing.",
    tag: "admin",
    auth: "admin",
    body,
    responses: {
      200: { description: "What the run did (or would do)", schema: reportSchema },
      409: { description: "The lifecycle job or another run is under way (LIFECYCLE_RUNNING)" },
    },
    handler: async ({ body: b, principal }) => {
      const report = await kura.runLifecycle({ dryRun: b?.dry_run === true, actor: adminActor(principal) });
      return { data: lifecycleReportJson(report) };
    },
  };
  return [run] as RouteSpec[];
}
