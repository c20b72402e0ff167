/**
 * The mail suite on SQLite + fs, and on PostgreSQL + radosgw (a real S3 server) when both are
 * there (in CI they are; a missing one is a failure there).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { describe } from "vitest";
import { Kura } from "../../src/kura.js";
import { createBucket, emptyAndDeleteBucket } from "../conformance/s3-harness.js";
import { backendAvailable } from "../support/backends.js";
import { postgresForTests } from "../support/servers/postgres.js";
import {
  RADOSGW_ACCESS_KEY,
  RADOSGW_SECRET_KEY,
  type RadosgwServer,
  radosgwProblem,
  startRadosgw,
} from "../support/servers/radosgw.js";
import { mailSuite } from "./mail.suite.js";

mailSuite("SQLite + fs", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kura-mail-"));
  return {
    open: (config = {}) =>
      Kura.open(
        { data_dir: dir, database: { backend: "sqlite", path: join(dir, "kura.db") }, ...config },
        { projectors: "inline" },
      ),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

const pg = await postgresForTests();
const pgAvailable = backendAvailable("catalog-postgres", "problem" in pg ? pg.problem : undefined);
const rgwAvailable = backendAvailable("s3-radosgw", radosgwProblem());

describe.skipIf(!pgAvailable || !rgwAvailable)("PostgreSQL + radosgw", () => {
  mailSuite("PostgreSQL + radosgw", async () => {
    if (!("url" in pg)) return undefined;
    const dir = await mkdtemp(join(tmpdir(), "kura-mail-pg-"));
    const rgw: RadosgwServer = await startRadosgw();
    const s3 = new S3Client({
      endpoint: rgw.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: RADOSGW_ACCESS_KEY, secretAccessKey: RADOSGW_SECRET_KEY },
    });
    const bucket = await createBucket(s3, "mail");
    const schema = `kura_mail_${randomBytes(4).toString("hex")}`;
    return {
      open: (config = {}) =>
        Kura.open(
          {
            data_dir: dir,
            database: { backend: "postgres", url: pg.url, schema },
            storage: {
              backend: "s3",
              options: {
                bucket,
                endpoint: rgw.endpoint,
                force_path_style: true,
                region: "us-east-1",
                credentials: "static",
                access_key_id: RADOSGW_ACCESS_KEY,
                secret_access_key: RADOSGW_SECRET_KEY,
              },
            },
            ...config,
          },
          { projectors: "inline" },
        ),
      cleanup: async () => {
        await emptyAndDeleteBucket(s3, bucket).catch(() => undefined);
        s3.destroy();
        await rgw.destroy();
        await pg.destroy();
        await rm(dir, { recursive: true, force: true });
      },
    };
  });
});
