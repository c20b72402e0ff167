/**
 * `kura token --tenant T [--user U] [--ttl 1h]`: prints a development token (HS256) minted from
 * the configured secret, or the one `kura serve` generates into `<data_dir>/jwt-secret`.
 */
import { loadConfig } from "../config/index.js";
import { KuraError } from "../core/errors.js";
import { mintToken, parseTtl, resolveJwtSecret } from "../http/auth.js";

export async function runToken(opts: {
  tenant: string;
  user?: string;
  ttl: string;
  config?: string;
  env: NodeJS.ProcessEnv;
}): Promise<string> {
  const config = await loadConfig({ env: opts.env, ...(opts.config ? { file: opts.config } : {}) });
  const secret = await resolveJwtSecret(config, { create: true });
  if (!secret) {
    throw new KuraError(
      "CONFIG_INVALID",
      "auth.jwks_url is set and auth.jwt_secret is not: tokens come from your identity provider",
      { operation: "token" },
    );
  }
  return mintToken({
    secret: secret.secret,
    tenant: opts.tenant,
    ttlSeconds: parseTtl(opts.ttl),
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    ...(opts.user !== undefined ? { user: opts.user } : {}),
  });
}
