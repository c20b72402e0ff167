/**
 * `kura token --tenant T [--user U] [--ttl 1h]`, or `kura token --admin`: prints a development
 * token (HS256; an admin one has `role: "admin"` and no tenant) minted from the configured secret, or the one `kura serve` generates into `<data_dir>/jwt-secret`. Refuses
 * tenant ids the id rule refuses (TENANT_INVALID) and lifetimes above
 * `auth.max_token_lifetime_seconds` (INVALID_ARGUMENT): the server would refuse such tokens.
 */

import { KuraError } from "../core/errors.js";
import { mintToken, parseTtl, resolveJwtSecret } from "../http/auth.js";
import { loadConfig } from "../open/config.js";

export async function runToken(opts: {
  tenant?: string;
  admin?: boolean;
  user?: string;
  ttl: string;
  config?: string;
  env: NodeJS.ProcessEnv;
}): Promise<string> {
  if (!opts.admin && opts.tenant === undefined) {
    throw new KuraError(
      "INVALID_ARGUMENT",
      "required option '-t, --tenant <tenant>' not specified (or --admin for an admin token)",
      { operation: "token" },
    );
  }
  if (opts.admin && opts.tenant !== undefined) {
    throw new KuraError(
      "INVALID_ARGUMENT",
      "give --tenant or --admin, not both: an admin token has no tenant",
      {
        operation: "token",
      },
    );
  }
  const config = await loadConfig({ env: opts.env, ...(opts.config ? { file: opts.config } : {}) });
  const secret = await resolveJwtSecret(config, { create: true });
  if (!secret) {
    throw new KuraError(
      "CONFIG_INVALID",
      "auth.jwks_url is set and auth.jwt_secret is not: tokens come from your identity provider",
      { operation: "token" },
    );
  }
  const ttlSeconds = parseTtl(opts.ttl);
  const max = config.auth.max_token_lifetime_seconds;
  if (ttlSeconds > max) {
    // The server would refuse the token: say so now rather than print a useless one.
    throw new KuraError(
      "INVALID_ARGUMENT",
      `ttl ${opts.ttl} exceeds auth.max_token_lifetime_seconds (${max} s), the longest lifetime kura serve accepts`,
      { operation: "token" },
    );
  }
  return mintToken({
    secret: secret.secret,
    ...(opts.admin ? { admin: true } : { tenant: opts.tenant as string }),
    ttlSeconds,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    ...(opts.user !== undefined ? { user: opts.user } : {}),
  });
}
