/**
 * `POST /v1/admin/migrations` and `GET /v1/admin/migrations/{id}` (issue 16): online migration
 * of the blob plane to another store, for the admin identity only. The POST answers 202 once
 * the target is attached (every write from then on lands in both) and the copy runs in the
 * background; the GET follows it (`engine/migration/online-migration.ts`).
 */
import { z } from "zod";
import type { MigrationView } from "../../engine/migration/online-migration.js";
import type { RouteSpec } from "../route.js";
import type { HttpDeps } from "./deps.js";

const count = z.number().int().nonnegative();
const section = z.record(z.string(), z.unknown());

const targetSchema = z
  .object({
    storage: section.optional().describe("A `storage` section as in the config file: backend and options"),
    database: section.optional().describe("Not migrated online yet: answers 501 MIGRATION_UNSUPPORTED"),
    kv: section.optional().describe("A `kv` section as in the config file: backend and its settings"),
  })
  .strict();

export const migrationSchema = z.object({
  id: z.string(),
  state: z.enum(["dual_write", "copying", "verifying", "switched", "done", "failed"]),
  progress: z.object({
    listed: count.describe("Objects the copy listed in the source"),
    copied: count.describe("Objects copied"),
    present: count.describe("Objects the target had already (dual-written or copied before a restart)"),
    vanished: count.describe("Objects deleted from the source before their copy"),
    bytes: count.describe("Bytes copied"),
    verified: count.describe("Objects (and KV keys) the verification compared"),
    recopied: count.describe("Objects (and KV keys) the verification copied again"),
    keys: count.describe("KV keys copied (kv target)"),
  }),
  target: z
    .record(z.string(), z.unknown())
    .describe("The configuration sections to start servers with once done (secrets included)"),
  error: z.string().optional().describe("Why the migration failed"),
  created_at: z.string().describe("ISO 8601"),
  updated_at: z.string().describe("ISO 8601"),
});

export function migrationJson(v: MigrationView): z.infer<typeof migrationSchema> {
  return {
    id: v.id,
    state: v.state,
    progress: v.progress,
    target: v.target as Record<string, unknown>,
    ...(v.error !== undefined ? { error: v.error } : {}),
    created_at: new Date(v.createdAt).toISOString(),
    updated_at: new Date(v.updatedAt).toISOString(),
  };
}

export function adminMigrationRoutes({ kura }: HttpDeps): RouteSpec[] {
  const body = z.object({ target: targetSchema }).strict();
  const start: RouteSpec<unknown, unknown, z.infer<typeof body>> = {
    method: "POST",
    path: "/v1/admin/migrations",
    operationId: "startMigration",
    summary: "Start an online migration of the blob and KV planes",
    description:
      "Attaches the target store (every write from now on lands in the source and the target), " +
      "then copies every body and session file the target lacks, verifies both listings, " +
      "copies every KV key (with a kv target), switches reads to the target and reports done. Its state is kept in the catalog: a " +
      "restarted server resumes it. The source is left in place, not deleted. One migration " +
      "at a time (409 MIGRATION_RUNNING); database targets answer 501.",
    tag: "admin",
    auth: "admin",
    body,
    responses: {
      202: { description: "Dual write under way; the copy runs in the background", schema: migrationSchema },
      400: {
        description:
          "The target is the store in use (INVALID_ARGUMENT) or its section is invalid (CONFIG_INVALID)",
      },
      409: { description: "Another migration is under way (MIGRATION_RUNNING)" },
      501: { description: "The target names a plane not migrated online yet (MIGRATION_UNSUPPORTED)" },
    },
    handler: async ({ body: b }) => {
      const view = await kura.migrations.start(b.target);
      return { status: 202, data: migrationJson(view) };
    },
  };
  const params = z.object({ id: z.string().min(1).max(64) });
  const get: RouteSpec<z.infer<typeof params>> = {
    method: "GET",
    path: "/v1/admin/migrations/{id}",
    operationId: "getMigration",
    summary: "An online migration's state and progress",
    tag: "admin",
    auth: "admin",
    params,
    responses: {
      200: { description: "The migration", schema: migrationSchema },
      404: { description: "No such migration (MIGRATION_NOT_FOUND)" },
    },
    handler: async ({ params: p }) => ({ data: migrationJson(await kura.migrations.get(p.id)) }),
  };
  return [start, get] as RouteSpec[];
}
