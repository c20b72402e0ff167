/**
 * HTTPS for `kura serve` (`server.tls`, SEC-2): the PEM files read and checked into the options
 * Node's TLS server takes, and their reload on SIGHUP.
 *
 * Every file is checked on its own before they are combined, so a problem names the file at
 * fault: an unreadable file, a certificate or key that does not parse, a key that is not the
 * certificate's. Problems are `CONFIG_INVALID` (exit 78 at startup, like any other setting).
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createSecureContext, type SecureContextOptions, type Server as TlsServer } from "node:tls";
import { type ConfigIssue, configError, issue, type TlsConfig } from "../config/index.js";

/** What Node's TLS server takes from `server.tls`: the PEM material and client authentication. */
export interface TlsServerOptions {
  key: Buffer;
  cert: Buffer;
  ca?: Buffer;
  /** Ask the client for a certificate (`client_auth` require or optional). */
  requestCert: boolean;
  /** Refuse, at the handshake, a client whose certificate `ca` did not sign (`client_auth: require`). */
  rejectUnauthorized: boolean;
}

/** The PEM files of `tls`, read and checked; CONFIG_INVALID naming each file at fault. */
export async function readTlsOptions(tls: TlsConfig, operation = "serve"): Promise<TlsServerOptions> {
  const problems: ConfigIssue[] = [];
  const read = async (setting: string, path: string): Promise<Buffer | undefined> => {
    try {
      return await readFile(path);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      problems.push(issue(`server.tls.${setting}`, `cannot read ${path} (${String(code ?? e)})`));
      return undefined;
    }
  };
  const [cert, key, ca] = await Promise.all([
    read("cert_file", tls.cert_file),
    read("key_file", tls.key_file),
    tls.ca_file === null ? undefined : read("ca_file", tls.ca_file),
  ]);
  const check = (setting: string, path: string, what: string, parse: () => unknown): boolean => {
    try {
      parse();
      return true;
    } catch (e) {
      problems.push(issue(`server.tls.${setting}`, `${path} holds no valid ${what}: ${reason(e)}`));
      return false;
    }
  };
  const certOk =
    cert !== undefined &&
    check("cert_file", tls.cert_file, "PEM certificate", () => new X509Certificate(cert));
  const keyOk =
    key !== undefined &&
    check("key_file", tls.key_file, "unencrypted PEM private key", () => createPrivateKey(key));
  if (ca !== undefined && tls.ca_file !== null) {
    check("ca_file", tls.ca_file, "PEM CA certificate", () => createSecureContext({ ca }));
  }
  if (certOk && keyOk) {
    try {
      createSecureContext({ cert, key });
    } catch (e) {
      problems.push(
        issue(
          "server.tls.key_file",
          `the key in ${tls.key_file} does not belong to the certificate in ${tls.cert_file}: ${reason(e)}`,
        ),
      );
    }
  }
  if (problems.length > 0 || cert === undefined || key === undefined) throw configError(problems, operation);
  return {
    cert,
    key,
    ...(ca !== undefined ? { ca } : {}),
    requestCert: tls.client_auth !== "none",
    rejectUnauthorized: tls.client_auth === "require",
  };
}

/**
 * Reads the files of `tls` again and puts them into `server` for new connections; the listener
 * and open connections are untouched. Throws (CONFIG_INVALID) and changes nothing when the
 * files are unreadable or do not fit together: the previous certificate keeps serving.
 */
export async function reloadTls(server: TlsServer, tls: TlsConfig): Promise<{ serialNumber: string }> {
  const options = await readTlsOptions(tls, "serve.reload");
  const context: SecureContextOptions = {
    cert: options.cert,
    key: options.key,
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
  };
  server.setSecureContext(context);
  return { serialNumber: new X509Certificate(options.cert).serialNumber };
}

function reason(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.replace(/^error:[0-9A-F]+:/, "").slice(0, 200);
}
