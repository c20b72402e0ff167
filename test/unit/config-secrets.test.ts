/**
 * Secrets in configuration (SEC-4): `env:VAR` indirection, and redaction of every secret kind.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  loadConfig,
  maskUrlSecrets,
  REDACTED,
  redactConfig,
  resolveConfig,
  type StorageOptionsParser,
} from "../../src/config/index.js";
import { KuraError } from "../../src/core/errors.js";

const passthrough: StorageOptionsParser = async (_backend, options) => options;

async function failure(promise: Promise<unknown>): Promise<KuraError> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof KuraError) return e;
    throw e;
  }
  throw new Error("expected the configuration to be rejected");
}

describe("env:VAR", () => {
  it("resolves any string value from the given environment, verbatim", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "kura-config-secrets-"));
    const file = join(cwd, "kura.yaml");
    await writeFile(
      file,
      `
storage:
  backend: s3
  options:
    bucket: "env:BUCKET"
    access_key_id: "env:MAIRUST_S3_ACCESS_KEY"
    secret_access_key: "env:MAIRUST_S3_SECRET_KEY"
auth: { jwt_secret: "env:KURA_JWT_SECRET" }
server: { port: "env:PORT" }
`,
    );
    const c = await loadConfig({
      file,
      cwd,
      env: {
        BUCKET: "mairust-mails",
        MAIRUST_S3_ACCESS_KEY: "AKIAEXAMPLE",
        MAIRUST_S3_SECRET_KEY: "0123",
        KURA_JWT_SECRET: "jwt-secret-value",
        PORT: "9443",
      },
      storageOptionsParser: passthrough,
    });
    expect(c.storage.options).toEqual({
      bucket: "mairust-mails",
      access_key_id: "AKIAEXAMPLE",
      secret_access_key: "0123", // text stays text: never parsed into a number
    });
    expect(c.auth.jwt_secret).toBe("jwt-secret-value");
    expect(c.server.port).toBe(9443);
  });

  it("an unset (or empty) variable is a CONFIG_ENV_MISSING problem, all of them in one error", async () => {
    const e = await failure(
      resolveConfig(
        {
          auth: { jwt_secret: "env:NO_SUCH_SECRET" },
          storage: { backend: "s3", options: { bucket: "b", secret_access_key: "env:EMPTY" } },
          server: { port: "nope" },
        },
        { env: { EMPTY: "" }, storageOptionsParser: passthrough },
      ),
    );
    expect(e.code).toBe("CONFIG_INVALID");
    const problems = e.context.problems as { path: string; code: string; message: string }[];
    expect(problems.map((p) => [p.path, p.code])).toEqual([
      ["auth.jwt_secret", "CONFIG_ENV_MISSING"],
      ["storage.options.secret_access_key", "CONFIG_ENV_MISSING"],
      ["server.port", "CONFIG_INVALID"],
    ]);
    expect(problems[0]!.message).toContain("NO_SUCH_SECRET");
  });

  it("without an environment, a reference cannot be resolved and says so", async () => {
    const e = await failure(
      resolveConfig({ auth: { jwt_secret: "env:S" } }, { storageOptionsParser: passthrough }),
    );
    expect(e.message).toContain("no environment was given");
  });

  it("a malformed reference is a problem", async () => {
    const e = await failure(
      resolveConfig({ auth: { issuer: "env:not a name" } }, { env: {}, storageOptionsParser: passthrough }),
    );
    expect((e.context.problems as { path: string }[])[0]!.path).toBe("auth.issuer");
  });
});

describe("redactConfig", () => {
  const SECRETS = {
    access_key_id: "AKIA-SECRET-1",
    secret_access_key: "SECRET-2",
    session_token: "SECRET-3",
    account_key: "SECRET-4",
    connection_string: "DefaultEndpointsProtocol=https;AccountKey=SECRET-5",
    presign_secret: "SECRET-6-presign-secret",
    master_key: "SECRET-7",
    sas_token: "sv=SECRET-8",
  };

  it("masks every secret kind and every URL password; JSON of the result holds no secret", async () => {
    const config = await resolveConfig(
      {
        database: "postgres://kura:SECRET-DB@db:5432/kura?sslmode=require&password=SECRET-QP",
        kv: "rediss://default:SECRET-REDIS@cache:6380/0",
        storage: {
          backend: "gcs",
          options: {
            ...SECRETS,
            bucket: "visible-bucket",
            credentials: "static",
            credentials_json: { type: "service_account", private_key: "SECRET-9" },
            endpoint: "http://user:SECRET-10@proxy:8080",
          },
        },
        auth: { jwt_secret: "SECRET-11", issuer: "https://id.example.com" },
      },
      { storageOptionsParser: passthrough },
    );
    const redacted = redactConfig(config) as {
      database: { url: string };
      kv: { url: string };
      storage: { options: Record<string, unknown> };
      auth: Record<string, unknown>;
    };
    const json = JSON.stringify(redacted);
    expect(json).not.toMatch(/SECRET/);
    for (const key of Object.keys(SECRETS)) expect(redacted.storage.options[key]).toBe(REDACTED);
    expect(redacted.storage.options.credentials_json).toBe(REDACTED);
    expect(redacted.auth.jwt_secret).toBe(REDACTED);
    expect(redacted.database.url).toBe(
      `postgres://kura:${REDACTED}@db:5432/kura?sslmode=require&password=${REDACTED}`,
    );
    expect(redacted.kv.url).toBe(`rediss://default:${REDACTED}@cache:6380/0`);
    expect(redacted.storage.options.endpoint).toBe(`http://user:${REDACTED}@proxy:8080`);
    // What is not secret stays readable, and an unset secret stays visibly unset.
    expect(redacted.storage.options.bucket).toBe("visible-bucket");
    expect(redacted.storage.options.credentials).toBe("static");
    expect(redacted.auth.issuer).toBe("https://id.example.com");
    const plain = redactConfig(await resolveConfig({}, { storageOptionsParser: passthrough })) as {
      auth: { jwt_secret: unknown };
    };
    expect(plain.auth.jwt_secret).toBeNull();
    // The config itself is untouched.
    expect(config.auth.jwt_secret).toBe("SECRET-11");
  });

  it("maskUrlSecrets leaves URLs without secrets alone", () => {
    for (const url of [
      "postgres://db/kura",
      "redis://cache:6379/0",
      "https://s3.amazonaws.com/b?region=x",
      "./path",
    ]) {
      expect(maskUrlSecrets(url)).toBe(url);
    }
    expect(maskUrlSecrets("redis://:pw@h")).toBe(`redis://:${REDACTED}@h`);
    expect(maskUrlSecrets("postgres://u:p/w@h/db")).toBe(`postgres://u:${REDACTED}@h/db`);
    expect(maskUrlSecrets("https://acct.blob.core.windows.net/c?sv=1&sig=abc")).toBe(
      `https://acct.blob.core.windows.net/c?sv=1&sig=${REDACTED}`,
    );
  });

  it("problems never carry secret values", async () => {
    const e = await failure(
      resolveConfig(
        {
          database: "mysql://root:SECRET-A@db/x",
          storage: "s3://KEY:SECRET-B@bucket",
          kv: { backend: "redis", url: "http://u:SECRET-C@cache" },
        },
        { storageOptionsParser: passthrough },
      ),
    );
    expect(JSON.stringify(e.toJSON())).not.toMatch(/SECRET/);
    expect(e.message).not.toMatch(/SECRET/);
  });
});
