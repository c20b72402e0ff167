#!/usr/bin/env bash
# What the FAISS vector adapter's tests (test/conformance/vector-faiss.test.ts,
# test/domains/vectors-faiss.test.ts) and the vectors bench need beyond npm: Debian's libfaiss
# (1.7.3) and the Node binding faiss-node 0.5.1 built against it, in a directory of its own under
# the test-server cache (its own `npm install` downloads a FAISS build and fails; it is not a
# package dependency). The addon is built for the Node that runs this script (the CI's Node 20);
# Kura loads it with `vector.module_path` (env KURA_VECTOR__MODULE_PATH) pointing at that directory.
# Idempotent: installs only what is missing.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
[ -f /usr/include/faiss/IndexIVFPQ.h ] || missing+=(libfaiss-dev)
dpkg -s libopenblas0-pthread >/dev/null 2>&1 || missing+=(libopenblas0-pthread)
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

cache="${KURA_TEST_SERVER_CACHE:-$HOME/.cache/kura-test-servers}"
dir="$cache/faiss-node"
node_version="$(node -p 'process.versions.modules')"
stamp="$dir/.built-v3-abi-$node_version"
if [ -f "$stamp" ] && [ -f "$dir/build/Release/faiss-node.node" ]; then
  echo "faiss-node already built in $dir (Node ABI $node_version)"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent faiss-node@0.5.1 >/dev/null)
rm -rf "$dir"
mkdir -p "$dir"
tar xzf "$work"/faiss-node-0.5.1.tgz -C "$dir" --strip-components=1
cd "$dir"
# Its own dependencies (node-addon-api, bindings) without its install script, which downloads.
npm install --no-save --no-package-lock --no-audit --no-fund --ignore-scripts --omit=dev --loglevel=error
# FAISS 1.7.3 keeps idx_t inside Index; the binding names it at namespace level.
grep -q 'using idx_t = Index::idx_t' src/faiss.cc ||
  sed -i '11a #include <faiss/Index.h>\nnamespace faiss { using idx_t = Index::idx_t; }' src/faiss.cc
# Two patches to the binding. It sets no search parameters: `setNprobe(n)` (FAISS's
# ParameterSpace, so it reaches an IVF index inside any wrapper) lets each query mode search its
# own number of inverted lists. And it is not safe in worker threads (below).
node - <<'JS'
const fs = require("node:fs");
let s = fs.readFileSync("src/faiss.cc", "utf8");
if (!s.includes("setNprobe")) {
  s = s.replace("#include <faiss/impl/IDSelector.h>", "#include <faiss/impl/IDSelector.h>\n#include <faiss/AutoTune.h>");
  s = s.replace(
    "  Napi::Value ntotal(const Napi::CallbackInfo &info)",
    `  Napi::Value setNprobe(const Napi::CallbackInfo &info)
  {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsNumber())
    {
      Napi::TypeError::New(env, "Expected the number of lists to probe.").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    try
    {
      faiss::ParameterSpace().set_index_parameter(index_.get(), "nprobe", info[0].As<Napi::Number>().DoubleValue());
    }
    catch (const faiss::FaissException &ex)
    {
      Napi::Error::New(env, ex.what()).ThrowAsJavaScriptException();
    }
    return env.Undefined();
  }

  Napi::Value ntotal(const Napi::CallbackInfo &info)`,
  );
  s = s.replace(
    'InstanceMethod("removeIds", &Index::removeIds),',
    'InstanceMethod("removeIds", &Index::removeIds),\n      InstanceMethod("setNprobe", &Index::setNprobe),',
  );
  if ((s.match(/setNprobe/g) || []).length !== 3) throw new Error("faiss.cc: the setNprobe patch did not apply");
}
// Each class keeps its constructor in one process-wide static, which the module's second load
// (in a worker thread) overwrites: the first thread's calls then use the other's handle and
// abort the process. One constructor per napi_env makes the addon safe in worker threads.
if (!s.includes("constructorOf")) {
  s = s.replace("#include <napi.h>", "#include <napi.h>\n#include <map>\n#include <mutex>");
  s = s.split("T::constructor->New({})").join("T::constructorOf(info.Env())->New({})");
  s = s.replace(
    "  inline static Napi::FunctionReference *constructor;",
    `  inline static std::mutex constructors_mutex;
  inline static std::map<napi_env, Napi::FunctionReference *> constructors;
  static Napi::FunctionReference *constructorOf(napi_env env)
  {
    std::lock_guard<std::mutex> lock(constructors_mutex);
    return constructors[env];
  }`,
  );
  s = s
    .split("    constructor = new Napi::FunctionReference();\n    *constructor = Napi::Persistent(func);")
    .join(
      "    auto ref = new Napi::FunctionReference();\n    *ref = Napi::Persistent(func);\n" +
        "    {\n      std::lock_guard<std::mutex> lock(constructors_mutex);\n      constructors[env] = ref;\n    }",
    );
  if (/constructor->|constructor = /.test(s)) throw new Error("faiss.cc: the per-thread constructor patch did not apply");
}
fs.writeFileSync("src/faiss.cc", s);
JS
cat >binding.gyp <<'GYP'
{ "targets": [{ "target_name": "faiss-node", "sources": ["src/faiss.cc"],
  "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
  "cflags_cc": ["-std=c++17", "-fexceptions", "-fopenmp", "-frtti"],
  "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
  "defines": ["NAPI_VERSION=6"],
  "libraries": ["-lfaiss", "-lblas", "-llapack", "-fopenmp"] }] }
GYP
# The node-gyp that ships with npm, against the headers of the Node that runs this script.
node_gyp="$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
nodedir="$(dirname "$(dirname "$(node -p 'process.execPath')")")"
node "$node_gyp" rebuild --nodedir="$nodedir" >/dev/null
rm -f .built-*
touch "$stamp"
# A check that also loads the module in a worker thread first: the main thread's calls must hold.
node -e '
const { Worker } = require("node:worker_threads");
const dir = process.argv[1];
const f = require(dir);
const w = new Worker(`require(${JSON.stringify(dir)}).Index.fromFactory(2, "Flat")`, { eval: true });
w.on("exit", () => {
  const i = f.Index.fromFactory(2, "IVF1,Flat");
  i.train([1, 2, 3, 4]);
  i.setNprobe(1);
  i.add([1, 2]);
  console.log("faiss-node built in " + dir + ": ntotal " + i.ntotal());
});' "$dir" 2>&1 | grep -v "^WARNING clustering"
