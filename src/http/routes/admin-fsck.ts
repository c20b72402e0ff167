/**
 * `POST /v1/admin/fsck` (CONS-3): the consistency checker inside the server, for the admin
 * identity only (a tenant's token or key gets 403 ADMIN_REQUIRED, an anonymous call 401). It
 * answers the report `kura fsck --json` prints. Inside the server it sees the writes under way,
 * so on SQLite unreferenced bodies are orphans whatever their age (`engine/fsck.ts`); it is the
 * way to check a SQLite deployment while it serves, where the CLI refuses (SERVER_RUNNING).
 */
import { z } from "zod";
import { parseDurationMs } from "../../core/time.js";
import type { RouteSpec } from "../route.js";
import { adminActor } from "./admin.js";
import type { HttpDeps } from "./deps.js";

const count = z.number().int().nonnegative();

const sampleSchema = z.object({
  problem: z.enum([
    "missing_object",
    "orphan_object",
    "checksum_mismatch",
    "index_drift",
    "usage_drift",
    "outbox",
  ]),
  tenant_id: z.string().optional(),
  key: z.string().optional().describe("The stored body's key (missing, corrupt and orphan bodies)"),
  kind: z.string().optional().describe("What owns the body: message, message-version, object"),
  message_id: z.string().optional(),
  detail: z.string(),
  repaired: z.boolean(),
});

/** The report, as `kura fsck --json` prints it (docs/cli.md). */
export const fsckReportSchema = z.object({
  ok: z.boolean().describe("No problem was found"),
  repair: z.boolean().describe("Repair was asked for"),
  checked: z.object({
    bodies: count,
    bytes: count,
    stored_objects: count,
    messages: count,
    search_documents: count,
    memory_vectors: count.describe("Items of the memories vector index"),
    tenants: count,
    outbox_events: count,
    in_flight: count.describe("Unreferenced bodies of writes under way (not orphans)"),
    recent_unreferenced: count.describe(
      "Unreferenced bodies younger than the grace on a shared catalog (not counted as orphans)",
    ),
    known_missing: count.describe("Bodies marked missing by an earlier repair"),
    known_corrupt: count.describe("Bodies marked corrupt by an earlier repair"),
  }),
  problems: z.object({
    missing_objects: count,
    orphan_objects: count,
    checksum_mismatches: count,
    index_drift: count,
    usage_drift: count,
    outbox: count,
  }),
  remaining: count.describe("Problems repair did not fix (all of them without repair)"),
  repairs: z.object({
    marked_missing: count,
    marked_corrupt: count,
    marks_cleared: count,
    orphans_deleted: count,
    reindexed: count,
    usage_fixed: count,
  }),
  samples: z.array(sampleSchema).describe("Up to 50 problems, in the order found"),
  seconds: z.number().nonnegative(),
});

export function adminFsckRoutes({ kura, metrics, clock }: HttpDeps): RouteSpec[] {
  const body = z
    .object({
      repair: z
        .boolean()
        .optional()
        .describe(
          "Re-index drifted messages, fix usage, delete orphans older than the grace, mark lost bodies",
        ),
      grace: z
        .string()
        .max(20)
        .optional()
        .describe("Orphans younger than this are kept: 0, 30s, 30m, 1h, 2d (default 1h)"),
    })
    .strict();

  const fsck: RouteSpec<unknown, unknown, z.infer<typeof body>> = {
    method: "POST",
    path: "/v1/admin/fsck",
    operationId: "fsck",
    summary: "Run the consistency checker",
    description:
      "Checks that the planes agree: every referenced body present and matching its SHA-256, no " +
      "unreferenced bodies, the full-text index in line with the messages, usage exact, the " +
      "outbox delivered and every change feed gap-free. With repair, fixes what can be fixed. " +
      "A repair that changed something is audited (fsck.repair in the ~admin stream). " +
      "Reads every body: it takes as long as reading the whole store.",
    tag: "admin",
    auth: "admin",
    body,
    responses: {
      200: { description: "The report; ok is true when nothing was wrong", schema: fsckReportSchema },
    },
    handler: async ({ body: b, principal }) => {
      const graceMs = b.grace === undefined ? undefined : parseDurationMs(b.grace, "http.fsck");
      const report = await kura.fsck({
        repair: b.repair === true,
        actor: adminActor(principal),
        ...(graceMs === undefined ? {} : { graceMs }),
      });
      // The admin dashboard shows the last check this server ran.
      metrics.lastFsck = {
        at: clock(),
        ok: report.ok,
        problems: { ...report.problems },
        seconds: report.seconds,
      };
      return { data: report };
    },
  };
  return [fsck] as RouteSpec[];
}
