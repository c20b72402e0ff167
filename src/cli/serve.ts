/**
 * `kura serve`: the HTTP service on the configured (or embedded default) planes. With no JWT
 * secret configured it generates one into `<data_dir>/jwt-secret` and says how to mint a token.
 * SIGINT/SIGTERM drain: the listener closes, requests still arriving on open connections get
 * 503 SERVER_SHUTTING_DOWN, idle connections close at once, in-flight requests get up to
 * `server.shutdown_timeout_ms` before their connections are destroyed; then Kura closes (pending
 * writes committed) and the process exits. A second signal exits at once.
 *
 * With `server.tls` the port serves HTTPS only. Its files are read and checked before anything
 * opens (a problem is CONFIG_INVALID naming the file), and again on SIGHUP: new connections get
 * the new certificate, the listener and open connections stay; files that do not load leave
 * the previous certificate in place and are logged.
 */
import { hostname } from "node:os";
import type { Server as TlsServer } from "node:tls";
import { listenUrl, redactConfig, serverScheme } from "../config/index.js";
import { KuraError } from "../core/errors.js";
import { resolveJwtSecret } from "../http/auth.js";
import { createS3Server } from "../http/s3/server.js";
import { buildServer, defaultLoggerOptions, listeningUrl } from "../http/server.js";
import { readTlsOptions, reloadTls } from "../http/tls.js";
import { Kura } from "../kura.js";
import { loadConfig } from "../open/config.js";

export interface ServeOptions {
  config?: string;
  port?: string;
  host?: string;
  /** `--s3-port`: the S3-compatible listener's port (API-7), else `server.s3.port`. */
  s3Port?: string;
  logLevel?: string;
  /** Seconds between maintenance runs (orphan GC, purge, usage folding, expiry); 0 = never. */
  jobsInterval?: string;
  env: NodeJS.ProcessEnv;
  /** Human-readable lines (stderr); the JSON log goes to stdout. */
  print: (line: string) => void;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export async function runServe(opts: ServeOptions): Promise<{ close(): Promise<void>; url: string }> {
  const intervalSeconds = Number(opts.jobsInterval ?? 60);
  if (!Number.isFinite(intervalSeconds) || intervalSeconds < 0) {
    throw new KuraError("INVALID_ARGUMENT", "--jobs-interval must be a number of seconds (0 = never)", {
      operation: "serve",
    });
  }
  const requestedPort = opts.port === undefined ? undefined : Number(opts.port);
  if (
    requestedPort !== undefined &&
    !(
      Number.isInteger(requestedPort) &&
      requestedPort >= 0 &&
      requestedPort <= 65_535 &&
      /^\d+$/.test(opts.port ?? "")
    )
  ) {
    throw new KuraError(
      "INVALID_ARGUMENT",
      `--port must be an integer from 0 to 65535, not ${JSON.stringify(opts.port)}`,
      {
        operation: "serve",
      },
    );
  }
  const logLevel = opts.logLevel ?? opts.env.KURA_LOG_LEVEL ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new KuraError(
      "INVALID_ARGUMENT",
      `${opts.logLevel === undefined ? "KURA_LOG_LEVEL" : "--log-level"} must be one of ${LOG_LEVELS.join(", ")}, not ${JSON.stringify(logLevel)}`,
      { operation: "serve" },
    );
  }
  const overrides: Record<string, unknown> = {};
  if (requestedPort !== undefined) overrides["server.port"] = requestedPort;
  if (opts.s3Port !== undefined) {
    const s3Port = Number(opts.s3Port);
    if (!/^\d{1,5}$/.test(opts.s3Port) || s3Port > 65_535)
      throw new KuraError(
        "INVALID_ARGUMENT",
        `--s3-port must be an integer from 0 to 65535, not ${JSON.stringify(opts.s3Port)}`,
        {
          operation: "serve",
        },
      );
    overrides["server.s3.port"] = s3Port;
  }
  if (opts.host !== undefined) overrides["server.host"] = opts.host;
  // Presigned fs URLs follow --host/--port (the config layer), or the bound port (buildServer).
  const config = await loadConfig({
    env: opts.env,
    overrides,
    ...(opts.config ? { file: opts.config } : {}),
  });

  const tls = config.server.tls;
  const https = tls ? await readTlsOptions(tls) : undefined;
  const secret = await resolveJwtSecret(config, { create: true });
  const kura = await Kura.open(config);
  // New API keys' secrets derive from the server's secret, so the S3 endpoint can check them (ADR 0035).
  if (secret) kura.useApiKeySecret(secret.secret);
  const app = await buildServer(kura, {
    config,
    jwtSecret: secret?.secret,
    logger: defaultLoggerOptions(logLevel),
    ...(https ? { https } : {}),
  });
  app.log.info({ config: redactConfig(config) }, "configuration");
  try {
    await app.listen({ host: config.server.host, port: config.server.port });
  } catch (e) {
    await app.close();
    await kura.close();
    const code = (e as { code?: unknown }).code;
    if (code === "EADDRINUSE" || code === "EADDRNOTAVAIL" || code === "EACCES") {
      throw new KuraError(
        "ADDRESS_UNAVAILABLE",
        `cannot listen on ${config.server.host}:${config.server.port}: ${
          code === "EADDRINUSE"
            ? "the port is in use (another kura serve?); choose another with --port or server.port"
            : code === "EACCES"
              ? "permission denied (ports below 1024 need privileges)"
              : "the address is not on this machine (server.host)"
        }`,
        { operation: "serve", cause: e },
      );
    }
    throw e;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.server.port;
  const url = listeningUrl(app) ?? listenUrl(config.server.host, port, serverScheme(config.server));
  opts.print(`kura serve listening on ${url}`);
  if (secret?.generated) opts.print(`generated a JWT secret in ${secret.path} (mode 0600)`);
  if (secret) {
    const flag = opts.config ? ` --config ${opts.config}` : "";
    opts.print(`get a token:  TOKEN=$(npx kura token --tenant demo${flag})`);
    opts.print(`then:         curl -H "Authorization: Bearer $TOKEN" ${url}/v1/usage`);
  } else {
    opts.print(`tokens are verified against ${config.auth.jwks_url} (RS256/ES256)`);
  }
  opts.print(`API docs:     ${url}/docs  (OpenAPI: ${url}/openapi.json)`);
  opts.print(`Console:      ${url}/console  (sign in with a token)`);

  // API-7: the S3-compatible endpoint, a second listener over the same Kura.
  const s3Config = config.server.s3;
  const s3 =
    s3Config.port === null
      ? undefined
      : createS3Server(kura, {
          region: s3Config.region,
          domain: s3Config.domain,
          idleTimeoutMs: config.server.idle_timeout_ms,
          bodyTimeoutMs: config.server.body_timeout_ms,
          ...(https ? { https } : {}),
          log: (level, message, detail) => app.log[level](detail, message),
        });
  if (s3 && s3Config.port !== null) {
    const s3Port = s3Config.port;
    try {
      await new Promise<void>((resolve, reject) => {
        s3.once("error", reject);
        s3.listen(s3Port, config.server.host, () => {
          s3.off("error", reject);
          resolve();
        });
      });
    } catch (e) {
      await app.close();
      await kura.close();
      throw new KuraError(
        "ADDRESS_UNAVAILABLE",
        `cannot listen on ${config.server.host}:${s3Port} for S3: ${(e as Error).message}`,
        {
          operation: "serve",
          cause: e,
        },
      );
    }
    s3.on("error", (e) => app.log.error({ err: e }, "S3 listener failed"));
    const bound = s3.address();
    const s3Url = listenUrl(
      config.server.host,
      typeof bound === "object" && bound ? bound.port : s3Port,
      serverScheme(config.server),
    );
    opts.print(`S3 endpoint:  ${s3Url}  (path-style; access key id and secret: a tenant API key)`);
  }

  // Presence: commands that must not run beside a server (kura reindex) see this lease.
  const presence = kura.announceServer(`serve:${hostname()}:${process.pid}:${port}`);

  // Maintenance jobs (LIFE-1): leases in the catalog make each run exactly once across nodes.
  let jobs: Promise<unknown> = Promise.resolve();
  const timer =
    intervalSeconds > 0
      ? setInterval(() => {
          jobs = kura.runJobs().then(
            (reports) => app.log.debug({ reports }, "maintenance jobs ran"),
            (e: unknown) => app.log.error({ err: e }, "maintenance jobs failed"),
          );
        }, intervalSeconds * 1000)
      : undefined;
  timer?.unref();

  // Belt and braces: every request path maps its errors to a response (server.ts), and tests
  // assert nothing escapes. Should a rejection escape anyway, one failed request must not take
  // every other one down with the process: log it (with its stack) and keep serving. Uncaught
  // exceptions keep Node's default (exit) — the process state is unknown — but are logged first.
  const onRejection = (reason: unknown) => {
    app.log.error({ err: reason }, "unhandled rejection (a bug: the request path should have handled it)");
  };
  const onException = (error: unknown, origin: string) => {
    app.log.fatal({ err: error, origin }, "uncaught exception: exiting");
  };
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtExceptionMonitor", onException);

  // SIGHUP re-reads the TLS files (certificate renewal without a restart). One reload at a time;
  // a failed one keeps the certificate in use. Without TLS, SIGHUP keeps Node's default.
  let reloading: Promise<void> = Promise.resolve();
  const onReload = () => {
    if (!tls) return;
    reloading = reloading.then(() =>
      reloadTls(app.server as unknown as TlsServer, tls).then(
        ({ serialNumber }) => app.log.info({ serial_number: serialNumber }, "TLS certificate reloaded"),
        (e: unknown) =>
          app.log.error(
            { err: e },
            `TLS reload failed, still serving the previous certificate: ${e instanceof Error ? e.message : String(e)}`,
          ),
      ),
    );
  };
  if (tls) process.on("SIGHUP", onReload);

  const drainMs = config.server.shutdown_timeout_ms;
  const closeS3 = async () => {
    if (!s3?.listening) return;
    const closed = new Promise<void>((resolve) => s3.close(() => resolve()));
    s3.closeIdleConnections();
    const timer = setTimeout(() => s3.closeAllConnections(), drainMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
  };
  let closing: Promise<void> | undefined;
  const close = () => {
    if (timer) clearInterval(timer);
    closing ??= (async () => {
      // app.close() drains (server.ts): 503 to requests still arriving, idle connections closed
      // at once, in-flight requests until the deadline, then their connections destroyed. A
      // maintenance run gets the same deadline. Kura closes last (pending writes committed).
      await Promise.all([app.close(), closeS3(), settleWithin(jobs, drainMs)]);
      await presence.stop();
      await kura.close();
      process.off("unhandledRejection", onRejection);
      process.off("uncaughtExceptionMonitor", onException);
      process.off("SIGHUP", onReload);
    })();
    return closing;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      opts.print(`${signal} again: exiting now`);
      process.exit(130);
    }
    opts.print(`${signal}: draining in-flight requests (up to ${drainMs} ms), then closing`);
    // Should closing Kura itself hang, the process still ends.
    setTimeout(
      () => {
        opts.print(`shutdown did not finish within ${2 * drainMs + 5000} ms: exiting`);
        process.exit(1);
      },
      2 * drainMs + 5000,
    ).unref();
    close().then(
      () => process.exit(0),
      (e: unknown) => {
        opts.print(`shutdown failed: ${e instanceof Error ? e.message : String(e)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return { close, url };
}

/** Waits for `promise` (its failure included) or `ms`, whichever comes first. */
function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}
