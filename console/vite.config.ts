/**
 * Build of the Kura console (`npm run build:console`): Preact + TypeScript, bundled into
 * `dist/console` with hashed asset names, served by `kura serve` at `/console`
 * (`src/http/console-page.ts`). Everything the page needs is in the bundle: no CDN, no fonts.
 */
import { fileURLToPath } from "node:url";
import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  root,
  base: "/console/",
  plugins: [preact()],
  logLevel: "warn",
  build: {
    outDir: fileURLToPath(new URL("../dist/console", import.meta.url)),
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    // Inline nothing as data: URLs, so the page's CSP stays 'self' only.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
});
