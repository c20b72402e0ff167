/**
 * The import boundaries of src/ (docs/ARCHITECTURE.md, "Invariants"), checked by
 * dependency-cruiser in `npm run lint:boundaries`:
 *
 *   http | cli  →  domains  →  engine  →  ports  ←  adapters
 *   layers: port in → port out      core: pure, imports nothing of Kura
 *   config: parses the file format; knows no adapter, engine or domain
 *   kura.ts, index.ts, projection-worker.ts and open/ (the per-plane openers): composition roots,
 *   may import anything; below them only cli/ may import them
 *
 * Type-only imports follow the same rules except where a rule says otherwise: a type is a
 * dependency too.
 */
const ROOTS = "^src/(kura|index|projection-worker)[.]ts$|^src/open/";

module.exports = {
  forbidden: [
    {
      name: "core-is-pure",
      comment:
        "core/ holds shared vocabulary (errors, ids, keys, checksums) and imports nothing else of Kura",
      severity: "error",
      from: { path: "^src/core/" },
      to: { path: "^src/", pathNot: "^src/core/" },
    },
    {
      name: "ports-are-contracts",
      comment: "ports/ declare interfaces and their vocabulary; they import only core/ and each other",
      severity: "error",
      from: { path: "^src/ports/" },
      to: { path: "^src/", pathNot: "^src/(core|ports)/" },
    },
    {
      name: "layers-wrap-ports",
      comment: "a layer takes a port and returns the same port",
      severity: "error",
      from: { path: "^src/layers/" },
      to: { path: "^src/", pathNot: "^src/(core|ports|layers)/" },
    },
    {
      name: "adapters-know-ports-only",
      comment:
        "an adapter implements a port; it never reaches up into the engine, domains, config or transports",
      severity: "error",
      from: { path: "^src/adapters/" },
      to: { path: "^src/", pathNot: "^src/(core|ports|adapters)/" },
    },
    {
      name: "adapters-of-other-planes",
      comment:
        "adapters never import another plane's adapters; shared backend plumbing lives in src/adapters/*.ts (pg, lmdb, options)",
      severity: "error",
      from: { path: "^src/adapters/([^/]+)/" },
      to: { path: "^src/adapters/[^/]+/", pathNot: "^src/adapters/$1/" },
    },
    {
      name: "adapters-of-the-same-plane",
      comment:
        "an adapter's folder is its own: it may use its plane's shared files (common, registry) but not a sibling adapter",
      severity: "error",
      from: { path: "^src/adapters/([^/]+)/([^/]+)/" },
      to: { path: "^src/adapters/$1/[^/]+/", pathNot: "^src/adapters/$1/$2/" },
    },
    {
      name: "engine-below-domains",
      comment:
        "the engine works across planes through ports; it never imports adapters, domains or transports",
      severity: "error",
      from: { path: "^src/engine/" },
      to: { path: `^src/(adapters|domains|http|cli|client)/|${ROOTS}` },
    },
    {
      name: "domains-above-engine",
      comment: "domains use the engine and ports, never adapters or transports",
      severity: "error",
      from: { path: "^src/domains/" },
      to: { path: "^src/(adapters|http|cli|client|open)/|^src/(index|projection-worker)[.]ts$" },
    },
    {
      name: "config-knows-the-format-only",
      comment: "config/ parses and validates the file format; adapters validate their own sections",
      severity: "error",
      from: { path: "^src/config/" },
      to: { path: "^src/", pathNot: "^src/(core|config)/" },
    },
    {
      name: "composition-roots-on-top",
      comment: "open/ picks adapters and wires layers; only the roots and the CLI reach for it",
      severity: "error",
      from: { path: "^src/(core|ports|layers|adapters|engine|domains|config|http|client)/" },
      to: { path: "^src/open/" },
    },
    {
      name: "transports-call-domains",
      comment: "http/ and cli/ reach data through the domains; adapters are the composition root's business",
      severity: "error",
      from: { path: "^src/(http|cli)/" },
      to: { path: "^src/adapters/" },
    },
    {
      name: "transports-use-engine-types-only",
      comment: "http/ may name engine and port types in signatures, but calls go through the domains",
      severity: "error",
      from: { path: "^src/http/" },
      to: { path: "^src/(engine|ports)/", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "client-stands-alone",
      comment: "kura/client is shipped to applications: it imports nothing of the server",
      severity: "error",
      from: { path: "^src/client/" },
      to: { path: "^src/", pathNot: "^src/client/" },
    },
    {
      name: "no-cycles-across-folders",
      comment: "a cycle between two folders of src/ means a boundary is in the wrong place",
      severity: "error",
      from: { path: "^src/([^/]+)/" },
      to: { circular: true, pathNot: "^src/$1/" },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^src/client/schema[.]ts$" },
  },
};
