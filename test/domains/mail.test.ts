/**
 * The mail suite on SQLite + fs, and on PostgreSQL + radosgw (a real S3 server) when both are
 * there (in CI they are; a missing one is a failure there).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { Kura } from "../../src/kura.js";
import { createBucket, emptyAndDeleteBucket } from "../conformance/s3-harness.js";
import { backendAvailable } from "../support/backends.js";
import { ALTERNATIVE, ISO_2022_JP, UTF8_QP } from "../support/mail-fixtures.js";
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

describe("mail in the full-text index, projected in the worker thread", () => {
  it("indexes stored mail, drops deleted mail, and rebuilds it with the messages", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kura-mail-worker-"));
    const kura = await Kura.open({
      data_dir: dir,
      database: { backend: "sqlite", path: join(dir, "kura.db") },
    });
    try {
      expect(kura.searchProjection).toBe("worker");
      const t = kura.tenant("acme");
      const alt = await t.mail.store("inbox", ALTERNATIVE);
      const jis = await t.mail.store("inbox", ISO_2022_JP);
      const gone = await t.mail.store("inbox", UTF8_QP);
      await t.mail.delete("inbox", gone.id);
      const find = async (q: string) =>
        (await t.searchMail(q, { consistent: true, consistentTimeoutMs: 120_000 })).hits.map((h) => h.id);
      expect(await find("pineapple")).toEqual([alt.id]);
      expect(await find("東京")).toEqual([jis.id]);
      expect(await find("München")).toEqual([]);
      expect(await kura.search.rebuild()).toBe(0);
      expect(await find("pineapple")).toEqual([alt.id]);
      expect(await find("会議")).toEqual([jis.id]);
    } finally {
      await kura.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 600_000);
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
