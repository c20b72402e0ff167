// Runs the Cloud Storage emulator of firebase-tools (the GCS JSON API, rules bypassed) without
// its Java rules runtime, which this project does not need: the gcs adapter talks the admin API.
//
// firebase-tools is not a package dependency (it is large); scripts/test-servers/install-firebase.sh
// installs it under $KURA_TEST_SERVER_CACHE/firebase (default .cache/test-servers/firebase).
// This relies on firebase-tools internals (lib/emulator/storage) and may need care on upgrades.
//
// Environment: PORT (default 9199), HOST (default 127.0.0.1), KURA_FIREBASE_DIR (the npm prefix
// holding firebase-tools). Set TMPDIR to keep the emulator's blob files apart from other runs.
//
// Route fix: firebase-tools implements object PATCH (metadata update) and rewriteTo/copyTo only
// under `/b/...`, while the JSON API paths that @google-cloud/storage calls are
// `/storage/v1/b/...` (answered 501). The handlers are the real ones; this script forwards those
// two JSON API paths to them and changes nothing else.
//
// When started with an IPC channel (child_process.fork) it answers two messages, used by the
// outage tests: {cmd: "stop"} closes the HTTP listener and every open connection (clients get
// "connection refused"), {cmd: "start"} listens on the same port again. Stored objects live in
// the process, so they survive a stop/start; each command is acknowledged with {ok: cmd}.
"use strict";
const path = require("node:path");

const cacheDir = process.env.KURA_TEST_SERVER_CACHE || path.resolve(__dirname, "../../.cache/test-servers");
const prefix = process.env.KURA_FIREBASE_DIR || path.join(cacheDir, "firebase");
let base;
try {
  base = path.dirname(require.resolve("firebase-tools/package.json", { paths: [prefix] }));
} catch {
  console.error(
    `firebase-tools is not installed under ${prefix}: run scripts/test-servers/install-firebase.sh`,
  );
  process.exit(2);
}

const http = require("node:http");
const storageServer = require(path.join(base, "lib/emulator/storage/server"));
const { StorageEmulator } = require(path.join(base, "lib/emulator/storage"));
const { EmulatorRegistry } = require(path.join(base, "lib/emulator/registry"));

const JSON_API_ALIASES = [
  { method: "PATCH", pattern: /^\/storage\/v1(\/b\/[^/?]+\/o\/[^/?]+)(\?.*)?$/ },
  {
    method: "POST",
    pattern: /^\/storage\/v1(\/b\/[^/?]+\/o\/[^/?]+\/(?:rewriteTo|copyTo)\/b\/[^/?]+\/o\/[^/?]+)(\?.*)?$/,
  },
];
const createApp = storageServer.createApp;
storageServer.createApp = async (...args) => {
  const app = await createApp(...args);
  const handler = (req, res) => {
    for (const alias of JSON_API_ALIASES) {
      const m = req.method === alias.method ? alias.pattern.exec(req.url) : null;
      if (m) req.url = m[1] + (m[2] || "");
    }
    app(req, res);
  };
  handler.listen = (...listenArgs) => http.createServer(handler).listen(...listenArgs);
  return handler;
};

const host = process.env.HOST || "127.0.0.1";
const port = Number(process.env.PORT || 9199);
const emu = new StorageEmulator({
  projectId: "demo-kura",
  host,
  port,
  rules: "storage.rules",
  auto_download: false,
});
// The rules runtime needs Java and a download; the admin API never consults rules.
emu._rulesRuntime.start = async () => {};
emu._rulesRuntime.stop = async () => {};
emu._rulesManager.start = async () => {};
emu._rulesManager.stop = async () => {};

async function main() {
  // The registry is what the upload routes ask for their own URL (resumable Location headers).
  await EmulatorRegistry.start(emu);
  console.log(`gcs emulator listening on http://${host}:${port}`);
  if (process.send) process.send({ ok: "ready", port });
}

process.on("message", (msg) => {
  const cmd = msg?.cmd;
  const run =
    cmd === "stop"
      ? () => (emu.destroyServer ? emu.destroyServer() : undefined)
      : cmd === "start"
        ? () => emu.start()
        : undefined;
  if (!run) return;
  Promise.resolve()
    .then(run)
    .then(
      () => process.send?.({ ok: cmd }),
      (e) => process.send?.({ error: String(e?.stack ?? e) }),
    );
});

async function shutdown() {
  try {
    await emu.stop();
  } finally {
    process.exit(0);
  }
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
process.on("disconnect", shutdown);

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
