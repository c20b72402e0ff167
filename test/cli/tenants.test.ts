/**
 * `kura tenants …` and `kura stats` (TEN-2…5, CLI-1): the CLI run as a process on a
 * configuration (SQLite + fs in a temp directory), its effects checked through the library.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isKuraError } from "../../src/core/errors.js";
import { Kura } from "../../src/kura.js";

const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");
const exec = promisify(execFile);
const TIMEOUT = { timeout: 120_000 };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe("kura tenants and kura stats", () => {
  let cwd: string;
  let env: Record<string, string>;
  let data: string;

  /** Runs `kura <args>`: its exit code and output, never throwing on a failure exit. */
  const kura = (...args: string[]): Promise<Run> =>
    exec(process.execPath, ["--import", TSX, MAIN, ...args], { cwd, env }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({
        code: e.code ?? -1,
        stdout: e.stdout ?? "",
        stderr: e.stderr ?? "",
      }),
    );
  // biome-ignore lint/suspicious/noExplicitAny: CLI JSON is checked field by field
  const json = async (...args: string[]): Promise<any> => {
    const r = await kura(...args, "--json");
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  };
  /** The library on the same data, closed after `fn`. */
  async function withLibrary<T>(fn: (k: Kura) => Promise<T>): Promise<T> {
    const k = await Kura.open({ data_dir: data });
    try {
      return await fn(k);
    } finally {
      await k.close();
    }
  }

  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), "kura-cli-tenants-"));
    data = join(cwd, "data");
    env = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      KURA_DATA_DIR: data,
      KURA_TIERS__PRO__LIMITS__MAX_OBJECTS: "1000",
    };
  });
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  it("creates, lists, shows and updates tenants; refuses what the registry refuses", TIMEOUT, async () => {
    const created = await json(
      "tenants",
      "create",
      "acme",
      "--name",
      "Acme Inc.",
      "--tier",
      "pro",
      "--limit",
      "max_storage_bytes=5000000",
      "--domains",
      "Acme.Example.com",
    );
    expect(created).toMatchObject({
      tenant_id: "acme",
      name: "Acme Inc.",
      status: "active",
      tier: "pro",
      limits: { max_storage_bytes: 5_000_000 },
      effective_limits: { max_objects: 1000, max_storage_bytes: 5_000_000 },
      domains: ["acme.example.com"],
    });
    expect((await kura("tenants", "create", "globex")).code).toBe(0);

    const again = await kura("tenants", "create", "acme");
    expect(again.code).toBe(73);
    expect(again.stderr).toContain("TENANT_EXISTS");
    const tier = await kura("tenants", "create", "initech", "--tier", "platinum");
    expect(tier.code).toBe(64);
    expect(tier.stderr).toContain("TIER_UNKNOWN");
    const limit = await kura("tenants", "create", "initech", "--limit", "max_objects=lots");
    expect(limit.code).toBe(64);
    expect(limit.stderr).toContain("INVALID_ARGUMENT");
    const badId = await kura("tenants", "create", "../etc");
    expect(badId.code).toBe(64);

    const listed = await json("tenants", "list");
    expect(listed.items.map((t: { tenant_id: string }) => t.tenant_id)).toEqual(["acme", "globex"]);
    const text = await kura("tenants", "list");
    expect(text.stdout.split("\n")[0]).toMatch(/^TENANT\s+STATUS\s+TIER/);
    expect(text.stdout).toMatch(/^acme\s+active\s+pro\s+Acme Inc\./m);

    // --limit merges into the overrides; name=none drops one.
    const updated = await json(
      "tenants",
      "update",
      "acme",
      "--limit",
      "max_objects=50",
      "--limit",
      "max_storage_bytes=none",
      "--no-name",
    );
    expect(updated).toMatchObject({
      name: null,
      limits: { max_objects: 50 },
      effective_limits: { max_objects: 50 },
    });
    expect(updated.limits.max_storage_bytes).toBeUndefined();
    const nothing = await kura("tenants", "update", "acme");
    expect(nothing.code).toBe(64);

    const missing = await kura("tenants", "show", "nobody");
    expect(missing.code).toBe(66);
    expect(missing.stderr).toContain("TENANT_NOT_FOUND");
    const shown = await kura("tenants", "show", "acme");
    expect(shown.stdout).toMatch(/^status:\s+active$/m);

    await withLibrary(async (k) => {
      expect((await k.tenants.get("acme")).limits).toEqual({ max_objects: 50 });
      // Every change is audited as the CLI's admin.
      const page = await k.tenants.auditLog({ tenantId: "acme" });
      expect(page.items.map((e) => [e.action, e.actor])).toEqual([
        ["tenant.create", "admin:cli"],
        ["tenant.update", "admin:cli"],
      ]);
    });
  });

  it("suspends and resumes a tenant", TIMEOUT, async () => {
    expect((await json("tenants", "suspend", "globex")).status).toBe("suspended");
    await withLibrary(async (k) => {
      await expect(k.tenants.admit("globex")).rejects.toMatchObject({ code: "TENANT_SUSPENDED" });
    });
    expect((await json("tenants", "resume", "globex")).status).toBe("active");
    await withLibrary(async (k) => {
      await expect(k.tenants.admit("globex")).resolves.toBeDefined();
    });
  });

  it("issues, lists and revokes API keys; the secret is printed once", TIMEOUT, async () => {
    const key = await json("tenants", "keys", "create", "acme", "--scope", "read", "--ttl", "30d");
    expect(key.scopes).toEqual(["read"]);
    expect(key.secret).toMatch(/^kura_kk[0-9a-f]{20}_/);
    expect(Date.parse(key.expires_at) - Date.now()).toBeGreaterThan(29 * 86_400_000);
    await withLibrary(async (k) => {
      expect(await k.tenants.authenticateKey(key.secret)).toMatchObject({
        tenantId: "acme",
        scopes: ["read"],
      });
    });

    const listed = await json("tenants", "keys", "list", "acme");
    expect(listed.items).toEqual([
      {
        key_id: key.key_id,
        scopes: ["read"],
        created_at: key.created_at,
        expires_at: key.expires_at,
        revoked_at: null,
      },
    ]);
    expect(JSON.stringify(listed)).not.toContain(key.secret);
    const text = await kura("tenants", "keys", "list", "acme");
    expect(text.stdout).toContain(key.key_id);
    expect(text.stdout).not.toContain(key.secret);

    const ttl = await kura("tenants", "keys", "create", "acme", "--ttl", "soon");
    expect(ttl.code).toBe(64);
    const scope = await kura("tenants", "keys", "create", "acme", "--scope", "admin");
    expect(scope.code).toBe(64);

    expect((await kura("tenants", "keys", "revoke", "acme", key.key_id)).code).toBe(0);
    await withLibrary(async (k) => {
      const failed = await k.tenants.authenticateKey(key.secret).catch((e: unknown) => e);
      expect(isKuraError(failed) && failed.code).toBe("API_KEY_INVALID");
    });
    const other = await kura("tenants", "keys", "revoke", "globex", key.key_id);
    expect(other.code).toBe(66);
    expect(other.stderr).toContain("API_KEY_NOT_FOUND");
  });

  it(
    "kura stats reports exact usage per tenant and plane and the message size histogram",
    TIMEOUT,
    async () => {
      const usage = await withLibrary(async (k) => {
        const acme = k.tenant("acme");
        await acme.messages.append("c", { role: "user", content: "short" });
        await acme.messages.append("c", { role: "user", content: "x".repeat(6000) });
        const gone = await acme.messages.append("c", { role: "user", content: "y".repeat(70_000) });
        await acme.messages.delete(gone.id);
        await acme.objects.put("docs/a.bin", Buffer.alloc(3000, 1));
        // Registered on first use (auth.auto_create_tenants).
        await k.tenant("stray").messages.append("c", { role: "user", content: "first use" });
        return { acme: await acme.usage(), stray: await k.tenant("stray").usage() };
      });

      const stats = await json("stats");
      const ids = stats.tenants.map((t: { tenant_id: string }) => t.tenant_id);
      expect(ids).toEqual(["acme", "globex", "stray"]);
      const [acme, globex, stray] = stats.tenants;
      expect(acme.usage).toEqual({
        bytes: usage.acme.bytes,
        objects: usage.acme.objects,
        messages: usage.acme.messages,
      });
      expect(stray).toMatchObject({ status: "active", tier: "free" });
      expect(stray.usage.bytes).toBe(usage.stray.bytes);
      // The planes account for every body usage counts.
      expect(acme.planes.messages.bodies + acme.planes.objects.bodies).toBe(acme.usage.objects);
      expect(acme.planes.messages.bytes + acme.planes.objects.bytes).toBe(acme.usage.bytes);
      expect(acme.planes.objects).toEqual({ bodies: 1, bytes: 3000 });
      expect(globex.planes).toEqual({ messages: { bodies: 0, bytes: 0 }, objects: { bodies: 0, bytes: 0 } });
      // Live messages only: the short one under 1 KB, the 6000-character one between 4 and 16 KB.
      expect(acme.message_sizes).toEqual({
        bounds: [1024, 4096, 16_384, 65_536, 131_072],
        counts: [1, 0, 1, 0, 0, 0],
        at_least_4kb: 1,
        at_least_128kb: 0,
      });
      expect(stats.totals.usage.bytes).toBe(usage.acme.bytes + usage.stray.bytes);
      expect(stats.totals.message_sizes.counts).toEqual([2, 0, 1, 0, 0, 0]);

      const text = await kura("stats");
      expect(text.code, text.stderr).toBe(0);
      // Usage counts the soft-deleted message until it is purged; the histogram only live ones.
      expect(text.stdout).toMatch(
        new RegExp(`^acme\\s+active\\s+${usage.acme.messages}\\s+${usage.acme.objects}\\s+`, "m"),
      );
      expect(text.stdout).toMatch(/^stray\s+active\s+1\s+1\s+/m);
      expect(text.stdout).toMatch(/^4K-16K\s+1\s+33\.3%$/m);
    },
  );

  it("kura stats splits bodies hot and cold; --cost estimates the month from them", TIMEOUT, async () => {
    const DAY = 86_400_000;
    // Three 10 KiB objects written 90 days ago.
    const old = await Kura.open({ data_dir: data }, { clock: () => Date.now() - 90 * DAY });
    try {
      for (const i of [1, 2, 3]) await old.tenant("stray").objects.put(`old/${i}`, Buffer.alloc(10_240, i));
    } finally {
      await old.close();
    }
    const stats = await json("stats");
    const stray = stats.tenants.find((t: { tenant_id: string }) => t.tenant_id === "stray");
    expect(stats.cold_after_days).toBe(30);
    expect(stray.age.cold).toEqual({ bodies: 3, bytes: 30_720 });
    expect(stray.age.hot.bodies + stray.age.cold.bodies).toBe(stray.usage.objects);
    expect(stats.totals.age.cold).toEqual({ bodies: 3, bytes: 30_720 });
    expect(stats.totals.age.hot.bytes + stats.totals.age.cold.bytes).toBe(stats.totals.usage.bytes);
    const later = await json("stats", "--cold-after", "365");
    expect(later.totals.age.cold).toEqual({ bodies: 0, bytes: 0 });
    expect((await kura("stats", "--cold-after", "-1")).code).toBe(64);

    const cost = await json("stats", "--cost");
    const bodies = stats.totals.usage.objects;
    expect(cost.prices).toMatchObject({ source: "built-in", currency: "USD", gb_bytes: 2 ** 30 });
    expect(cost.prices.as_of).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(cost.usage).toMatchObject({
      bodies,
      bytes: stats.totals.usage.bytes,
      cold: { bodies: 3, bytes: 30_720 },
    });
    expect(cost.usage.written_last_30_days.bodies).toBe(bodies - 3);
    expect(cost.estimates).toHaveLength(13);
    for (const e of cost.estimates) {
      const storage = e.storage.reduce((a: number, p: { usd: number }) => a + p.usd, 0);
      const requests = e.requests.reduce((a: number, p: { usd: number }) => a + p.usd, 0);
      expect(e.storage_usd).toBeCloseTo(storage, 9);
      expect(e.requests_usd).toBeCloseTo(requests, 9);
      expect(e.total_usd).toBeCloseTo(e.storage_usd + e.requests_usd, 9);
      expect(e.reads.measured).toBe(false);
      expect(e.requests[0]).toMatchObject({ kind: "put", count: bodies - 3 });
    }
    // Every body here is under 128 KiB: S3 Standard-IA bills each as 128 KiB.
    const ia = cost.estimates.find((e: { class: string }) => e.class === "standard-ia");
    expect(ia.storage[0].billable_bytes).toBe(bodies * 131_072);
    expect(cost.savings.archive).toMatchObject({ cold_bodies: 3, cold_bytes: 30_720 });
    expect(cost.savings.archive.by_class).toHaveLength(10);
    expect(cost.savings.packing).toMatchObject({ small_bodies: bodies, pack_bytes: 1_048_576 });
    expect(cost.savings.packing.by_class).toHaveLength(13);

    const prices = join(cwd, "prices.yaml");
    await writeFile(
      prices,
      "as_of: 2025-06-01\npacking: {small_under_bytes: 131072, pack_bytes: 1048576}\nproviders:\n" +
        "  mine:\n    region: here\n    hot_class: a\n    classes:\n      a: {storage_gb_month: 1, put_per_1000: 1}\n",
    );
    const own = await json("stats", "--cost", "--prices", prices);
    expect(own.prices).toMatchObject({ as_of: "2025-06-01", source: prices });
    expect(own.estimates).toEqual([
      expect.objectContaining({ provider: "mine", class: "a", region: "here" }),
    ]);
    expect(own.estimates[0].storage[0].billable_bytes).toBe(stats.totals.usage.bytes);
    await writeFile(prices, "as_of: 2025-06-01\nproviders: {}\n");
    const bad = await kura("stats", "--cost", "--prices", prices);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain("INVALID_ARGUMENT");

    const text = await kura("stats", "--cost");
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^aws-s3\s+standard-ia\s+us-east-1\s/m);
    expect(text.stdout).toContain("archive: the 3 cold bodies");
    expect(text.stdout).toContain("reads are not measured");
    const printed = await kura("stats", "--print-prices");
    expect(printed.stdout).toContain("glacier-instant-retrieval:");
  });

  it("deletes a tenant and its data only when confirmed", TIMEOUT, async () => {
    const unconfirmed = await kura("tenants", "delete", "acme");
    expect(unconfirmed.code).toBe(64);
    await withLibrary(async (k) => {
      expect((await k.tenants.get("acme")).status).toBe("active");
      expect((await k.tenant("acme").usage()).messages).toBe(3);
    });
    expect(await json("tenants", "delete", "acme", "--yes")).toEqual({ tenant_id: "acme", deleted: true });
    await withLibrary(async (k) => {
      await expect(k.tenants.get("acme")).rejects.toMatchObject({ code: "TENANT_NOT_FOUND" });
      expect(await k.tenant("acme").usage()).toMatchObject({ bytes: 0, objects: 0, messages: 0 });
      expect((await k.tenant("stray").usage()).messages).toBe(1);
    });
    expect((await kura("tenants", "show", "acme")).code).toBe(66);
    expect((await kura("tenants", "delete", "nobody", "--yes")).code).toBe(66);
  });

  it(
    "on a SQLite catalog, refuses to run beside a kura serve (SERVER_RUNNING, exit 75)",
    TIMEOUT,
    async () => {
      const k = await Kura.open({ data_dir: data });
      const server = k.announceServer("test-server");
      try {
        const r = await kura("tenants", "list");
        expect(r.code).toBe(75);
        expect(r.stderr).toContain("SERVER_RUNNING");
      } finally {
        await server.stop();
        await k.close();
      }
    },
  );
});
