/**
 * No credential reaches a log line: credential-looking query parameters (any case, any route,
 * matched or not), bearer tokens and JWTs are redacted in the request line, in error messages
 * and in stack traces, at every log level.
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isCredentialName, redactText } from "../../src/http/log-redaction.js";
import { defaultLoggerOptions } from "../../src/http/server.js";
import { PortFaults, withPortFaults } from "../../src/layers/port-faults.js";
import { type Harness, startServer } from "./harness.js";

/** Parameter names the logs must never show the value of, as clients spell them. */
const CREDENTIAL_PARAMS = [
  "Authorization",
  "authorization",
  "jwt",
  "JWT",
  "id_token",
  "token",
  "Token",
  "access_token",
  "refresh_token",
  "api_key",
  "Api-Key",
  "apikey",
  "APIKEY",
  "key",
  "secret",
  "client_secret",
  "password",
  "Password",
  "signature",
  "X-Amz-Signature",
  "x-amz-signature",
  "X-Amz-Credential",
  "X-Amz-Security-Token",
  "X-Goog-Signature",
  "X-Kura-Signature",
  "sig",
  "Sig",
  "%74oken",
];

const valueFor = (i: number) => `cred${i}Zq7VALUE`;

function capture(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { stream, lines };
}

describe("credential-looking names", () => {
  it("are recognised whatever their case, and ordinary names are not", () => {
    for (const name of CREDENTIAL_PARAMS) expect(isCredentialName(name), name).toBe(true);
    for (const name of ["prefix", "limit", "cursor", "order", "include", "role", "monkey", "author"])
      expect(isCredentialName(name), name).toBe(false);
  });

  it("are redacted in any text quoting a URL, with JWTs and bearer credentials", () => {
    const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnRfaWQiOiJhY21lIn0.c2lnbmF0dXJlLXZhbHVl";
    const text = redactText(
      `GET /v1/x?prefix=a&jwt=${jwt}&Api_Key=k1 failed; header Bearer abc.def; see https://h/p?X-Amz-Signature=s1&limit=5 and ${jwt}`,
    );
    for (const secret of [jwt, "k1", "abc.def", "s1"]) expect(text).not.toContain(secret);
    expect(text).toContain("prefix=a");
    expect(text).toContain("limit=5");
  });
});

describe.each(["trace", "info"])("request logs at %s", (level) => {
  let h: Harness;
  const logs = capture();
  beforeAll(async () => {
    h = await startServer({ server: { logger: { ...defaultLoggerOptions(level), stream: logs.stream } } });
  });
  afterAll(async () => h?.close());

  it("never show a credential-looking query parameter, on any route", async () => {
    const token = await h.token("acme");
    const query = [
      "prefix=visible-prefix",
      ...CREDENTIAL_PARAMS.map((name, i) => `${name}=${valueFor(i)}`),
      `jwt=${token}`,
      `Authorization=Bearer%20${token}`,
    ].join("&");
    for (const path of [
      "/v1/objects",
      "/v1/usage",
      "/healthz",
      "/v1/no-such-route",
      "/v1/messages/not-an-id",
    ]) {
      await h.call("GET", `${path}?${query}`, { token });
      await h.call("GET", `${path}?${query}`); // no token: 401 (or the public route)
    }
    const out = logs.lines.join("");
    expect(out).toContain("visible-prefix"); // the URL is logged, only the credentials are not
    CREDENTIAL_PARAMS.forEach((name, i) => {
      expect(out, name).not.toContain(valueFor(i));
    });
    expect(out).not.toContain(token);
    expect(out).not.toContain(token.split(".")[2]);
  });
});

describe("error logs", () => {
  const faults = new PortFaults();
  let h: Harness;
  const logs = capture();
  beforeAll(async () => {
    h = await startServer({
      server: { logger: { ...defaultLoggerOptions("info"), stream: logs.stream } },
      open: { wrapStore: (s) => withPortFaults(s, faults) },
    });
  });
  afterAll(async () => {
    faults.disarm();
    await h?.close();
  });

  it("never show a credential quoted in an error's message, stack or cause", async () => {
    const token = await h.token("acme");
    const signed =
      "https://bucket.s3.example/acme/o.txt?X-Amz-Signature=SIGVALUE77&X-Amz-Credential=CREDVALUE77";
    faults.arm({
      mode: "reject",
      make: () =>
        new Error(`GET ${signed} failed with Bearer ${token}`, {
          cause: new Error(`retrying ${signed}&api_key=KEYVALUE77`),
        }),
    });
    const r = await h.call("PUT", "/v1/objects/o.txt", { token, body: "x" });
    faults.disarm();
    expect(r.status).toBe(500);
    const out = logs.lines.join("");
    expect(out).toContain("request failed"); // the error was logged…
    expect(out).toContain("bucket.s3.example"); // …with its message
    for (const secret of ["SIGVALUE77", "CREDVALUE77", "KEYVALUE77", token])
      expect(out).not.toContain(secret);
  });
});
