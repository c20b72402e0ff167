/**
 * `kura tenants list|create|show|update|suspend|resume|delete|keys` (TEN-2…5, CLI-1): the
 * tenant registry from the command line, through the library on the configuration (as `kura gc`
 * opens it: alone beside no `kura serve` on SQLite, beside the servers on PostgreSQL). Text
 * tables for people, `--json` for scripts (the HTTP admin API's shapes). Changes are audited as
 * `admin:cli`.
 */
import type { Command } from "commander";
import { KuraError } from "../core/errors.js";
import type { ApiKeyInfo, TenantInfo, TenantUpdate } from "../domains/tenants.js";
import { tenantJson } from "../http/routes/admin.js";
import type { Kura } from "../kura.js";
import type { TenantJwt } from "../ports/catalog.js";
import { type ConfigOption, withKura } from "./open-kura.js";
import { printFields, printJson, printTable } from "./output.js";

const ACTOR = "admin:cli";

interface JsonOption extends ConfigOption {
  json?: boolean;
}

function usage(message: string, operation: string): KuraError {
  return new KuraError("INVALID_ARGUMENT", message, { operation });
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `--limit name=value` (repeatable): value a positive integer, or `none` to drop the override. */
function parseLimits(pairs: readonly string[], op: string): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const pair of pairs) {
    const m = /^([a-z_]+)=(none|\d{1,15})$/.exec(pair);
    if (!m)
      throw usage(`--limit takes name=value (a positive integer, or none), not ${pair.slice(0, 64)}`, op);
    out[m[1] as string] = m[2] === "none" ? null : Number(m[2]);
  }
  return out;
}

/** `--domains a.example.com,b.example.com`; an empty string clears the list. */
const parseDomains = (list: string) =>
  list
    .split(",")
    .map((d) => d.trim())
    .filter((d) => d !== "");

interface JwtOptions {
  jwtIssuer?: string;
  jwksUrl?: string;
  jwtAudience?: string;
  noJwt?: boolean;
}

function parseJwt(opts: JwtOptions, op: string): TenantJwt | null | undefined {
  if (opts.noJwt) return null;
  if (opts.jwtIssuer === undefined && opts.jwksUrl === undefined) {
    if (opts.jwtAudience !== undefined) throw usage("--jwt-audience needs --jwt-issuer and --jwks-url", op);
    return undefined;
  }
  if (opts.jwtIssuer === undefined || opts.jwksUrl === undefined)
    throw usage("give --jwt-issuer and --jwks-url together", op);
  return { issuer: opts.jwtIssuer, jwksUrl: opts.jwksUrl, audience: opts.jwtAudience ?? null };
}

function limitsText(limits: Record<string, number>): string {
  const entries = Object.entries(limits);
  return entries.length === 0 ? "-" : entries.map(([k, v]) => `${k}=${v}`).join(" ");
}

function printTenant(t: TenantInfo, json: boolean | undefined): void {
  if (json) {
    printJson(tenantJson(t));
    return;
  }
  const fields: [string, string][] = [
    ["tenant", t.tenantId],
    ["name", t.name ?? "-"],
    ["status", t.status],
    ["tier", t.tier],
    ["limits", limitsText(t.limits)],
    ["in force", limitsText(t.effectiveLimits as Record<string, number>)],
    ["domains", t.domains.length === 0 ? "-" : t.domains.join(", ")],
    [
      "jwt",
      t.jwt === null
        ? "-"
        : `${t.jwt.issuer} (${t.jwt.jwksUrl}${t.jwt.audience ? `, ${t.jwt.audience}` : ""})`,
    ],
    ["created", new Date(t.createdAt).toISOString()],
    ["updated", new Date(t.updatedAt).toISOString()],
  ];
  if (t.deletion)
    fields.push([
      "deleting",
      `${t.deletion.phase}: ${t.deletion.catalog} rows, ${t.deletion.blob} bodies, ${t.deletion.kv} keys removed`,
    ]);
  printFields(fields);
}

const iso = (ms: number | null) => (ms === null ? "-" : new Date(ms).toISOString());

function keyJson(k: ApiKeyInfo) {
  return {
    key_id: k.keyId,
    scopes: k.scopes,
    created_at: new Date(k.createdAt).toISOString(),
    expires_at: k.expiresAt === null ? null : new Date(k.expiresAt).toISOString(),
    revoked_at: k.revokedAt === null ? null : new Date(k.revokedAt).toISOString(),
  };
}

/** `30d`, `12h`, `15m`: a lifetime in ms. */
function parseDuration(text: string, op: string): number {
  const m = /^(\d{1,6})([smhd])$/.exec(text);
  if (!m) throw usage(`--ttl takes a duration like 30d, 12h or 15m, not ${text.slice(0, 32)}`, op);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s" | "m" | "h" | "d"];
  return Number(m[1]) * unit;
}

/** Every registered tenant, page by page. */
async function allTenants(kura: Kura): Promise<TenantInfo[]> {
  const out: TenantInfo[] = [];
  for (let after: string | undefined; ; ) {
    const page = await kura.tenants.list({ limit: 1000, ...(after === undefined ? {} : { after }) });
    out.push(...page.items);
    if (!page.more) return out;
    after = page.items.at(-1)?.tenantId;
  }
}

export function registerTenantCommands(program: Command): void {
  const tenants = program
    .command("tenants")
    .description(
      "the tenant registry: list, register, change, suspend, resume and delete tenants, and their API keys",
    );
  const common = (c: Command) =>
    c
      .option("-c, --config <file>", "YAML config file (default: $KURA_CONFIG)")
      .option("--json", "print JSON (the shapes of the HTTP admin API)");

  common(tenants.command("list").description("registered tenants, in id order")).action(
    async (opts: JsonOption) => {
      await withKura("tenants list", opts, async (kura) => {
        const items = await allTenants(kura);
        if (opts.json) return printJson({ items: items.map(tenantJson) });
        printTable(
          ["TENANT", "STATUS", "TIER", "NAME", "DOMAINS", "LIMITS"],
          items.map((t) => [
            t.tenantId,
            t.status,
            t.tier,
            t.name ?? "-",
            t.domains.join(",") || "-",
            limitsText(t.limits),
          ]),
        );
      });
    },
  );

  common(
    tenants.command("show").description("one tenant, with the limits in force").argument("<tenant>"),
  ).action(async (id: string, opts: JsonOption) => {
    await withKura("tenants show", opts, async (kura) => printTenant(await kura.tenants.get(id), opts.json));
  });

  const identity = (c: Command) =>
    c
      .option("--name <name>", "display name")
      .option("--tier <tier>", "a configured tier (tiers.{name}); default free")
      .option(
        "--domains <list>",
        "host names of the tenant, comma-separated (replaces the list; '' clears it)",
      )
      .option(
        "--limit <name=value>",
        "override a limit of the tier (repeatable; value none drops the override): max_storage_bytes, " +
          "max_objects, max_message_bytes, max_object_bytes, max_requests_per_second",
        collect,
      )
      .option("--jwt-issuer <iss>", "the iss claim of the tenant's own identity provider")
      .option("--jwks-url <url>", "where that provider's signing keys are")
      .option("--jwt-audience <aud>", "the aud claim its tokens carry");

  interface IdentityOptions extends JsonOption, JwtOptions {
    name?: string;
    tier?: string;
    domains?: string;
    limit?: string[];
  }

  common(identity(tenants.command("create").description("register a tenant").argument("<tenant>"))).action(
    async (id: string, opts: IdentityOptions) => {
      const op = "tenants create";
      const limits = parseLimits(opts.limit ?? [], op);
      if (Object.values(limits).includes(null)) throw usage("--limit name=none only applies to update", op);
      const jwt = parseJwt(opts, op);
      await withKura(op, opts, async (kura) => {
        const info = await kura.tenants.create(
          {
            tenantId: id,
            ...(opts.name !== undefined ? { name: opts.name } : {}),
            ...(opts.tier !== undefined ? { tier: opts.tier } : {}),
            ...(opts.domains !== undefined ? { domains: parseDomains(opts.domains) } : {}),
            limits: limits as Record<string, number>,
            ...(jwt !== undefined ? { jwt } : {}),
          },
          { actor: ACTOR },
        );
        printTenant(info, opts.json);
      });
    },
  );

  common(
    identity(
      tenants
        .command("update")
        .description("change a tenant's name, tier, limit overrides, domains or identity provider")
        .argument("<tenant>"),
    )
      .option("--no-name", "clear the display name")
      .option("--no-jwt", "remove the tenant's own identity provider"),
  ).action(
    async (id: string, opts: Omit<IdentityOptions, "name"> & { name?: string | false; jwt?: boolean }) => {
      const op = "tenants update";
      const limits = parseLimits(opts.limit ?? [], op);
      const jwt = parseJwt({ ...opts, noJwt: opts.jwt === false }, op);
      await withKura(op, opts, async (kura) => {
        const change: TenantUpdate = {
          ...(opts.name !== undefined ? { name: opts.name === false ? null : opts.name } : {}),
          ...(opts.tier !== undefined ? { tier: opts.tier } : {}),
          ...(opts.domains !== undefined ? { domains: parseDomains(opts.domains) } : {}),
          ...(jwt !== undefined ? { jwt } : {}),
        };
        if (Object.keys(limits).length > 0) {
          // The overrides are replaced whole: start from the tenant's own.
          const merged: Record<string, number> = { ...(await kura.tenants.get(id)).limits };
          for (const [name, value] of Object.entries(limits)) {
            if (value === null) delete merged[name];
            else merged[name] = value;
          }
          change.limits = merged;
        }
        if (Object.keys(change).length === 0)
          throw usage("nothing to change: give --name, --tier, --domains, --limit or --jwt-*", op);
        printTenant(await kura.tenants.update(id, change, { actor: ACTOR }), opts.json);
      });
    },
  );

  for (const [name, status, what] of [
    ["suspend", "suspended", "suspend a tenant: every call of it answers 403 TENANT_SUSPENDED until resumed"],
    ["resume", "active", "reactivate a suspended tenant"],
  ] as const) {
    common(tenants.command(name).description(what).argument("<tenant>")).action(
      async (id: string, opts: JsonOption) => {
        await withKura(`tenants ${name}`, opts, async (kura) =>
          printTenant(await kura.tenants.update(id, { status }, { actor: ACTOR }), opts.json),
        );
      },
    );
  }

  common(
    tenants
      .command("delete")
      .description(
        "delete a tenant and all its data from every plane (messages, objects, KV, sessions, search, vectors, memories, usage, keys)",
      )
      .argument("<tenant>")
      .option("--yes", "confirm: the tenant's data cannot be recovered")
      .option("--no-wait", "only start the deletion: it goes on in the next kura serve or kura gc"),
  ).action(async (id: string, opts: JsonOption & { yes?: boolean; wait: boolean }) => {
    const op = "tenants delete";
    if (!opts.yes) throw usage(`deleting ${id.slice(0, 128)} removes all its data: confirm with --yes`, op);
    await withKura(op, opts, async (kura) => {
      const started = await kura.tenants.delete(id, { actor: ACTOR });
      if (!opts.wait) {
        if (opts.json) printJson(tenantJson(started));
        else process.stdout.write(`deleting ${id}: it goes on in the next kura serve or kura gc\n`);
        return;
      }
      await kura.tenants.settleDeletions();
      const after = await kura.tenants.get(id).catch((e: unknown) => {
        if (e instanceof KuraError && e.code === "TENANT_NOT_FOUND") return undefined;
        throw e;
      });
      if (after !== undefined) {
        // Stopped short (a plane failed): the job resumes on the next start.
        if (opts.json) printJson(tenantJson(after));
        else printTenant(after, false);
        throw new KuraError(
          "UNEXPECTED",
          `the deletion of ${id} did not finish; it resumes in the next kura serve or kura gc`,
          {
            operation: op,
          },
        );
      }
      if (opts.json) printJson({ tenant_id: id, deleted: true });
      else process.stdout.write(`deleted ${id}\n`);
    });
  });

  const keys = tenants.command("keys").description("a tenant's API keys: list, create, revoke");
  common(
    keys
      .command("list")
      .description("a tenant's keys (never their secrets), revoked ones included")
      .argument("<tenant>"),
  ).action(async (id: string, opts: JsonOption) => {
    await withKura("tenants keys list", opts, async (kura) => {
      const items = await kura.tenants.listKeys(id);
      if (opts.json) return printJson({ items: items.map(keyJson) });
      printTable(
        ["KEY", "SCOPES", "CREATED", "EXPIRES", "REVOKED"],
        items.map((k) => [k.keyId, k.scopes.join(","), iso(k.createdAt), iso(k.expiresAt), iso(k.revokedAt)]),
      );
    });
  });

  common(
    keys
      .command("create")
      .description("issue an API key; its secret is printed this once (Kura keeps only its SHA-256)")
      .argument("<tenant>")
      .option("--scope <scope>", "read or write (repeatable; default both)", collect)
      .option("--ttl <duration>", "expire after 30d, 12h, 15m, … (default: never)"),
  ).action(async (id: string, opts: JsonOption & { scope?: string[]; ttl?: string }) => {
    const op = "tenants keys create";
    const ttl = opts.ttl === undefined ? undefined : parseDuration(opts.ttl, op);
    await withKura(op, opts, async (kura) => {
      const key = await kura.tenants.createKey(
        id,
        { scopes: opts.scope ?? ["read", "write"], expiresAt: ttl === undefined ? null : Date.now() + ttl },
        { actor: ACTOR },
      );
      if (opts.json) {
        const { revoked_at: _revoked, ...fields } = keyJson(key);
        return printJson({ ...fields, secret: key.secret });
      }
      printFields([
        ["key", key.keyId],
        ["scopes", key.scopes.join(",")],
        ["expires", iso(key.expiresAt)],
        ["secret", key.secret],
      ]);
      process.stderr.write("the secret is shown only now: keep it somewhere safe\n");
    });
  });

  common(
    keys
      .command("revoke")
      .description("revoke a key: its next request fails, on every node")
      .argument("<tenant>")
      .argument("<key_id>"),
  ).action(async (id: string, keyId: string, opts: JsonOption) => {
    await withKura("tenants keys revoke", opts, async (kura) => {
      await kura.tenants.revokeKey(id, keyId, { actor: ACTOR });
      if (opts.json) printJson({ tenant_id: id, key_id: keyId, revoked: true });
      else process.stdout.write(`revoked ${keyId}\n`);
    });
  });
}
