/** Where `kura serve` is reachable, from its settings (one helper for the CLI, the server and Kura). */
import type { ServerConfig } from "./schema.js";

/**
 * The URL of a server listening on `host` and `port`: a wildcard host (`0.0.0.0`, `::`) is
 * reached through the loopback address, an IPv6 address goes in brackets. `https` when the
 * server serves TLS (`server.tls`).
 */
export function listenUrl(host: string, port: number, scheme: "http" | "https" = "http"): string {
  const reachable = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  return `${scheme}://${reachable.includes(":") ? `[${reachable}]` : reachable}:${port}`;
}

/** The scheme the server answers on: `https` with `server.tls`, else `http`. */
export function serverScheme(server: Pick<ServerConfig, "tls">): "http" | "https" {
  return server.tls ? "https" : "http";
}

/**
 * Where the settings say the server is reachable: `server.public_url`, else where it listens.
 * Undefined with port 0 and no public URL: the port is known only once the server listens.
 */
export function configuredServerUrl(
  server: Pick<ServerConfig, "host" | "port" | "public_url" | "tls">,
): string | undefined {
  if (server.public_url !== null) return server.public_url;
  return server.port === 0 ? undefined : listenUrl(server.host, server.port, serverScheme(server));
}
