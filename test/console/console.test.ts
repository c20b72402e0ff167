/**
 * The console in a real browser (UI-1): Debian's Chromium, headless, driven by playwright-core,
 * against a `kura serve` child process on embedded defaults — at 1280×800 and at 390×844. Signs
 * in, sees a message appended through the API, opens it, searches in Japanese (no search while an
 * input method composes), uploads an object by drag and drop and downloads it, opens the dashboard
 * and finds its charts drawn with data points; the admin gets a tenant switcher. Every request the
 * page made went to the server's origin. Screenshots go to .cache/console-screenshots/.
 *
 * The console is built first when dist/console is missing or older than its sources.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/http/auth.js";
import { backendAvailable } from "../support/backends.js";

const ROOT = resolve(import.meta.dirname, "../..");
const CHROMIUM = "/usr/bin/chromium";
const SHOTS = join(ROOT, ".cache/console-screenshots");
const MAIN = join(ROOT, "src/cli/main.ts");
const TSX = createRequire(import.meta.url).resolve("tsx");
const SECRET = "console-test-secret-0123456789abcdef0123";

const available = backendAvailable(
  "console-chromium",
  existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (scripts/test-servers/install-chromium.sh)`,
);

/** Newest modification time of the files under `dir`. */
function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return t;
}

function buildConsoleIfStale(): void {
  const built = join(ROOT, "dist/console/index.html");
  if (existsSync(built) && statSync(built).mtimeMs >= newest(join(ROOT, "console"))) return;
  const vite = join(ROOT, "node_modules/vite/bin/vite.js");
  const r = spawnSync(process.execPath, [vite, "build", "--config", "console/vite.config.ts"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`npm run build:console failed: ${r.stderr}${r.stdout}`);
}

const VIEWPORTS = [
  { name: "desktop", width: 1280, height: 800 },
  { name: "phone", width: 390, height: 844 },
];

describe.skipIf(!available)("the console in Chromium", () => {
  let cwd: string;
  let child: ChildProcess;
  let origin = "";
  let browser: Browser;
  let tenantToken: string;
  let adminToken: string;

  const api = async (method: string, path: string, body?: unknown, token = tenantToken) => {
    const r = await fetch(`${origin}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return JSON.parse(text).data;
  };

  beforeAll(async () => {
    buildConsoleIfStale();
    mkdirSync(SHOTS, { recursive: true });
    cwd = await mkdtemp(join(tmpdir(), "kura-console-"));
    child = spawn(process.execPath, ["--import", TSX, MAIN, "serve", "--port", "0", "--host", "127.0.0.1"], {
      cwd,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        KURA_AUTH__JWT_SECRET: SECRET,
        KURA_LOG_LEVEL: "warn",
      },
    });
    child.stdout?.resume();
    let stderr = "";
    origin = await new Promise<string>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`kura serve did not start: ${stderr}`)), 90_000);
      child.stderr?.on("data", (c) => {
        stderr += c;
        const m = /listening on (http:\/\/\S+)/.exec(stderr);
        if (m?.[1]) {
          clearTimeout(timer);
          done(new URL(m[1]).origin);
        }
      });
      child.on("exit", (code) => fail(new Error(`kura serve exited with ${code}: ${stderr}`)));
    });
    tenantToken = await mintToken({ secret: SECRET, tenant: "acme", user: "tester", ttlSeconds: 3600 });
    adminToken = await mintToken({ secret: SECRET, admin: true, user: "root", ttlSeconds: 3600 });
    // Before any dashboard computes its storage figures (reused for a minute): a 4–16 KB body.
    await api("POST", "/v1/chats/admin-view/messages", { role: "user", content: "x".repeat(5000) });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu"],
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    if (child && child.exitCode === null) {
      const exited = new Promise((done) => child.once("exit", done));
      child.kill("SIGTERM");
      await exited;
    }
    if (cwd) await rm(cwd, { recursive: true, force: true });
  });

  it("serves the app with its content types, caching, client-route fallback and a same-origin CSP", async () => {
    const page = await fetch(`${origin}/console`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("cache-control")).toBe("no-cache");
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/https?:|\*/);
    const html = await page.text();
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)?.[1] as string;
    expect(script).toBeDefined();
    const asset = await fetch(`${origin}${script}`);
    expect(asset.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(asset.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    const etag = asset.headers.get("etag") as string;
    expect((await fetch(`${origin}${script}`, { headers: { "if-none-match": etag } })).status).toBe(304);
    const route = await fetch(`${origin}/console/chats/some-chat`);
    expect(route.status).toBe(200);
    expect(await route.text()).toBe(html);
    expect((await fetch(`${origin}/console/assets/missing-12345678.js`)).status).toBe(404);
    expect((await fetch(`${origin}/console/..%2f..%2fpackage.json`)).status).toBe(404);
    const doc = (await (await fetch(`${origin}/openapi.json`)).json()) as {
      paths: Record<string, { get?: unknown }>;
    };
    expect(doc.paths["/v1/dashboard"]?.get).toBeDefined();
    expect(doc.paths["/v1/admin/dashboard"]?.get).toBeDefined();
    expect(doc.paths["/console"]?.get).toBeDefined();
  });

  for (const vp of VIEWPORTS) {
    it(`works at ${vp.width}×${vp.height}: sign in, a message, Japanese search, upload/download, dashboard`, {
      timeout: 180_000,
    }, async () => {
      const context = await browser.newContext({
        viewport: { width: vp.width, height: vp.height },
        acceptDownloads: true,
      });
      const page = await context.newPage();
      const requests: string[] = [];
      page.on("request", (r) => {
        requests.push(r.url());
      });
      const shot = (step: string) =>
        page.screenshot({ path: join(SHOTS, `${vp.name}-${step}.png`), fullPage: true });
      try {
        // Sign in.
        await page.goto(`${origin}/console`);
        await page.getByLabel("Token").fill(tenantToken);
        await shot("1-sign-in");
        await page.getByRole("button", { name: "Sign in" }).click();
        await page.getByRole("navigation", { name: "Main" }).waitFor();
        // The first Tab reaches the skip link, with a visible focus ring.
        await page.keyboard.press("Tab");
        expect(await page.evaluate("document.activeElement?.textContent")).toBe("Skip to content");
        expect(await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")).toBe("solid");
        // Focused, the skip link covers the top bar; move on as a keyboard user would.
        await page.evaluate("document.activeElement?.blur()");

        // A message appended through the API shows up in its chat.
        const chat = `chat-${vp.name}`;
        const text = `東京の天気は晴れです (${vp.name})`;
        const ref = await api("POST", `/v1/chats/${chat}/messages`, { role: "user", content: text });
        await page.getByRole("link", { name: "Chats" }).click();
        await page.getByRole("link", { name: chat }).click();
        await page.getByRole("link", { name: new RegExp(`東京の天気は晴れです \\(${vp.name}\\)`) }).click();
        await page.getByTestId("message-body").waitFor();
        expect(await page.getByTestId("message-body").textContent()).toBe(text);
        const facts = (await page.locator("dl.facts").textContent()) ?? "";
        expect(facts).toContain(ref.content_url);
        expect(facts).toContain(ref.checksum);
        expect(facts).toContain(`${ref.size_bytes} bytes`);
        await shot("2-message");
        // Soft delete, then undelete.
        await page.getByRole("button", { name: "Delete" }).click();
        await page.getByRole("status").filter({ hasText: "Deleted (soft)" }).waitFor();
        const gone = await fetch(`${origin}/v1/messages/${ref.id}`, {
          headers: { authorization: `Bearer ${tenantToken}` },
        });
        expect(gone.status).toBe(404);
        await page.getByRole("button", { name: "Undelete" }).click();
        await page.getByRole("status").filter({ hasText: "Undeleted" }).waitFor();
        expect((await api("GET", `/v1/messages/${ref.id}`)).content).toBe(text);

        // A long history arrives page by page as it scrolls (pages of 30).
        const long = `long-${vp.name}`;
        await api("POST", `/v1/chats/${long}/messages:batch`, {
          messages: Array.from({ length: 70 }, (_, i) => ({ role: "user", content: `line ${i}` })),
        });
        await page.goto(`${origin}/console/chats/${long}`);
        const rows = page.locator("ol.messages > li");
        await rows.first().waitFor();
        for (let i = 0; i < 10 && (await rows.count()) < 70; i++) {
          await page.locator(".sentinel").scrollIntoViewIfNeeded();
          await page.waitForTimeout(300);
        }
        expect(await rows.count()).toBe(70);
        // Newest first: the last row is the first line written.
        expect(await rows.last().textContent()).toContain("line 0");

        // Search in Japanese: nothing is searched while the IME composes; the composed text is.
        // By keyboard: the Search link, Enter.
        await page.getByRole("link", { name: "Search" }).focus();
        await page.keyboard.press("Enter");
        const box = page.getByRole("searchbox");
        await box.waitFor();
        const searches = () => requests.filter((u) => new URL(u).pathname === "/v1/search").length;
        const before = searches();
        await box.focus();
        // The page's own code (a string: this file is compiled without the DOM library).
        await page.evaluate(`(() => {
          const el = document.querySelector("input[type=search]");
          el.dispatchEvent(new CompositionEvent("compositionstart", { bubbles: true, data: "" }));
          for (const partial of ["と", "とう", "とうき", "とうきょう", "東京"]) {
            el.value = partial;
            el.dispatchEvent(new InputEvent("input", { bubbles: true, isComposing: true, data: partial }));
          }
        })()`);
        // Longer than the console's typing pause: a search would have gone out by now.
        await page.waitForTimeout(1200);
        expect(searches()).toBe(before);
        const answered = page.waitForResponse((r) => new URL(r.url()).pathname === "/v1/search");
        await page.evaluate(`document.querySelector("input[type=search]").dispatchEvent(
          new CompositionEvent("compositionend", { bubbles: true, data: "東京" }))`);
        const response = await answered;
        expect(new URL(response.url()).searchParams.get("q")).toBe("東京");
        expect(searches()).toBe(before + 1);
        const mark = page.locator("ol.hits mark").first();
        await mark.waitFor();
        expect(await mark.textContent()).toContain("東京");
        await shot("3-search");

        // Upload by drag and drop, then download the same bytes. At phone width the server is
        // made to look like one without tus (OPTIONS /v1/uploads unanswered): one PUT instead.
        const via = vp.name === "phone" ? "PUT" : "tus";
        if (via === "PUT")
          await page.route(`${origin}/v1/uploads`, (route) =>
            route.request().method() === "OPTIONS" ? route.fulfill({ status: 404 }) : route.continue(),
          );
        await page.getByRole("link", { name: "Objects" }).click();
        const dropzone = page.getByTestId("dropzone");
        await dropzone.waitFor();
        const name = `notes-${vp.name}.txt`;
        const content = `console upload ${vp.name} こんにちは\n`;
        await page.evaluate(`(() => {
          const dt = new DataTransfer();
          dt.items.add(new File([${JSON.stringify(content)}], ${JSON.stringify(name)}, { type: "text/plain" }));
          const zone = document.querySelector("[data-testid=dropzone]");
          zone.dispatchEvent(new DragEvent("dragover", { bubbles: true, cancelable: true, dataTransfer: dt }));
          zone.dispatchEvent(new DragEvent("drop", { bubbles: true, cancelable: true, dataTransfer: dt }));
        })()`);
        await page.getByRole("status").filter({ hasText: "uploaded" }).waitFor();
        expect(await page.locator(".transfers li").first().textContent()).toContain(`${name} (${via})`);
        const methods = requests.filter((u) => new URL(u).pathname.startsWith("/v1/uploads")).length;
        expect(via === "tus" ? methods > 1 : methods === 1).toBe(true);
        expect(await page.getByLabel(`Upload of ${name}`).getAttribute("value")).toBe(
          String(Buffer.byteLength(content)),
        );
        const downloadButton = page.getByRole("button", { name: `Download ${name}` });
        await downloadButton.waitFor();
        const [download] = await Promise.all([page.waitForEvent("download"), downloadButton.click()]);
        expect(download.suggestedFilename()).toBe(name);
        expect(readFileSync(await download.path(), "utf8")).toBe(content);
        await page.getByRole("button", { name: `Link to ${name}` }).click();
        const link = page.locator("a.presigned");
        await link.waitFor();
        const presigned = (await link.getAttribute("href")) as string;
        expect(await (await fetch(presigned)).text()).toBe(content);
        await shot("4-objects");

        // Sessions: the active ones, and one's metadata (with its TTL) and files.
        const sid = `sess-${vp.name}`;
        const putMeta = await fetch(`${origin}/v1/sessions/${sid}/meta/user?ttl=3600`, {
          method: "PUT",
          headers: { authorization: `Bearer ${tenantToken}`, "content-type": "application/json" },
          body: JSON.stringify({ name: "花子" }),
        });
        expect(putMeta.status).toBe(200);
        await page.getByRole("link", { name: "Sessions" }).click();
        await page.getByRole("button", { name: sid }).click();
        const metaRow = page.getByRole("row").filter({ hasText: "花子" });
        await metaRow.waitFor();
        expect(await metaRow.textContent()).toMatch(/(59|60) min/);

        // The dashboard draws its charts with data points.
        await page.getByRole("link", { name: "Dashboard" }).click();
        await page.getByTestId("chart-rates").locator(".point").first().waitFor();
        const points = async (id: string) => page.getByTestId(id).locator(".point").count();
        expect(await points("chart-rates")).toBe(60); // 30 slots × ingest and query
        expect(await points("chart-sizes")).toBe(6);
        expect(await points("chart-latency")).toBe(3);
        expect(await points("chart-cost")).toBeGreaterThan(0);
        expect(await points("chart-planes")).toBeGreaterThan(0);
        const planeValues = await page
          .getByTestId("chart-planes")
          .locator(".point")
          .evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-value"))));
        expect(planeValues.some((v) => v > 0)).toBe(true);
        const rateValues = await page
          .getByTestId("chart-rates")
          .locator(".point")
          .evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-value"))));
        expect(rateValues.some((v) => v > 0)).toBe(true);
        // Two alert lines: 4 KB and 128 KB.
        expect(await page.getByTestId("chart-sizes").locator(".marker").count()).toBe(2);
        // Nothing overflows the viewport sideways.
        const overflow = await page.evaluate<number>(
          "document.documentElement.scrollWidth - window.innerWidth",
        );
        expect(overflow).toBeLessThanOrEqual(0);
        await shot("5-dashboard");

        // Every request went to the server that served the page.
        const foreign = requests.filter((u) => !u.startsWith("data:") && new URL(u).origin !== origin);
        expect(foreign).toEqual([]);
        expect(requests.length).toBeGreaterThan(5);
      } finally {
        await context.close();
      }
    });
  }

  it("gives an admin token the dashboard with a tenant switcher", { timeout: 120_000 }, async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const requests: string[] = [];
    page.on("request", (r) => {
      requests.push(r.url());
    });
    try {
      await page.goto(`${origin}/console`);
      await page.getByLabel("Token").fill(adminToken);
      await page.getByRole("button", { name: "Sign in" }).click();
      const switcher = page.getByLabel("Tenant", { exact: true });
      await switcher.waitFor({ timeout: 5000 }).catch(async (e) => {
        await page.screenshot({ path: join(SHOTS, "admin-failed.png"), fullPage: true });
        throw new Error(`${e}: ${await page.locator("main").textContent()}`);
      });
      await page.getByTestId("chart-tenants").locator(".point").first().waitFor({ state: "attached" });
      expect(await page.getByTestId("chart-outbox").locator(".point").count()).toBeGreaterThan(0);
      expect(await page.getByTestId("chart-cache").locator(".point").count()).toBeGreaterThan(0);
      await switcher.selectOption("acme");
      await page.getByRole("heading", { name: "Dashboard · acme" }).waitFor();
      expect(requests.some((u) => u.endsWith("/v1/admin/dashboard?tenant=acme"))).toBe(true);
      const sizes = page.getByTestId("chart-sizes").locator(".point");
      await sizes.first().waitFor({ state: "attached" });
      const counts = await sizes.evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-value"))));
      expect(counts).toHaveLength(6);
      // acme's 5000-byte message is in the 4–16 KB bucket.
      expect(counts[2]).toBeGreaterThan(0);
      await page.screenshot({ path: join(SHOTS, "admin-dashboard.png"), fullPage: true });
      expect(requests.filter((u) => !u.startsWith("data:") && new URL(u).origin !== origin)).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
