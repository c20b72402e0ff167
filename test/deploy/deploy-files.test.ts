/**
 * The deployment files (SPEC DIST-2), checked without Docker: every YAML parses; every Kura
 * configuration they and the cloud guides show loads through the real loader (with each adapter's
 * own option schema); the compose file's nodes, health checks, ports and proxy agree with that
 * configuration; the Kubernetes probes, ports and grace period agree with it and with Kura's
 * shutdown; the Dockerfile is multi-stage, builds the native addons, runs as a non-root user
 * and has a health check on the configured port; the IAM policy grants only what Kura uses.
 */
import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import type { KuraConfig } from "../../src/config/index.js";
import { loadConfig } from "../../src/open/config.js";

const ROOT = resolve(import.meta.dirname, "../..");
const DEPLOY = join(ROOT, "deploy");
const GUIDES = join(ROOT, "docs/deploy");

/** A value for each `env:VAR` a configuration names, as a deployment would set it. */
function envFor(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [, name] of text.matchAll(/env:([A-Z0-9_]+)/g)) {
    const n = name as string;
    env[n] = n.includes("DATABASE")
      ? "postgres://kura:secret@postgres:5432/kura"
      : n.includes("REDIS")
        ? "redis://redis:6379/0"
        : n.includes("CONNECTION_STRING")
          ? "DefaultEndpointsProtocol=https;AccountName=kurastore;AccountKey=a2V5;EndpointSuffix=core.windows.net"
          : "a-secret-value-of-32-characters-or-more";
  }
  return env;
}

/** Loads one configuration text as `kura serve` would (a file, the environment, the adapters' schemas). */
async function load(text: string, extraEnv: Record<string, string> = {}): Promise<KuraConfig> {
  const { mkdtemp, writeFile, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const dir = await mkdtemp(join(tmpdir(), "kura-deploy-"));
  try {
    const file = join(dir, "kura.yaml");
    await writeFile(file, text);
    return await loadConfig({ file, env: { ...envFor(text), ...extraEnv }, cwd: dir });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && /\.ya?ml$/.test(e.name)) out.push(join(e.parentPath, e.name));
  }
  return out;
}

/** The ```yaml blocks of a guide that start with `# kura.yaml`. */
function kuraBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```yaml\n(# kura\.yaml\n[\s\S]*?)```/g)].map((m) => m[1] as string);
}

interface Probe {
  httpGet: { path: string; port: string };
}
interface Container {
  ports: { name: string; containerPort: number }[];
  readinessProbe: Probe;
  livenessProbe: Probe;
  lifecycle?: { preStop?: { exec?: { command?: string[] } } };
  securityContext: { allowPrivilegeEscalation: boolean };
  env: { name: string; value?: string }[];
  envFrom: { secretRef: { name: string } }[];
  volumeMounts: { name: string; mountPath: string }[];
}
interface Deployment {
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: {
      spec: {
        terminationGracePeriodSeconds: number;
        securityContext: { runAsNonRoot: boolean };
        containers: Container[];
      };
    };
  };
}
interface Service {
  spec: { selector: Record<string, string>; ports: { targetPort: string }[] };
}

const shutdownBoundSeconds = (c: KuraConfig) => (2 * c.server.shutdown_timeout_ms + 5000) / 1000;

describe("deployment files", () => {
  it("every YAML file parses (each document of multi-document files)", async () => {
    const files = await yamlFiles(DEPLOY);
    expect(files.length).toBeGreaterThanOrEqual(7);
    for (const file of files) {
      const docs = parseAllDocuments(await readFile(file, "utf8"));
      for (const d of docs) expect(d.errors, file).toEqual([]);
    }
  });

  it("the image's own kura.yaml loads and listens on every interface on the exposed port", async () => {
    const config = await load(await readFile(join(DEPLOY, "kura.yaml"), "utf8"));
    expect(config.server.host).toBe("0.0.0.0");
    const dockerfile = await readFile(join(DEPLOY, "Dockerfile"), "utf8");
    expect(dockerfile).toContain(`EXPOSE ${config.server.port}`);
    expect(dockerfile).toContain(`http://127.0.0.1:${config.server.port}/healthz`);
  });

  it("the Dockerfile: multi-stage, native addons built in the image, non-root, health check, serve", async () => {
    const text = await readFile(join(DEPLOY, "Dockerfile"), "utf8");
    const lines = text.split("\n").filter((l) => l.trim() !== "" && !l.trimStart().startsWith("#"));
    const instructions = lines.filter((l) => /^[A-Z]+\s/.test(l)).map((l) => l.split(/\s+/)[0]);
    const known = new Set([
      "FROM",
      "WORKDIR",
      "RUN",
      "COPY",
      "ENV",
      "USER",
      "EXPOSE",
      "VOLUME",
      "HEALTHCHECK",
      "STOPSIGNAL",
      "CMD",
      "ARG",
      "LABEL",
      "ENTRYPOINT",
    ]);
    for (const i of instructions) expect(known.has(i as string), `unknown instruction ${i}`).toBe(true);
    const froms = lines.filter((l) => l.startsWith("FROM "));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const build = /^FROM \S+ AS (\S+)/.exec(froms[0] as string)?.[1];
    expect(build).toBeDefined();
    // Every base image is pinned to a tag, the same Node line in both stages (the addons' ABI).
    const bases = froms.map((f) => f.split(/\s+/)[1] as string);
    for (const b of bases) expect(b).toMatch(/^[a-z0-9./-]+:[0-9][\w.-]*$/);
    expect(new Set(bases).size).toBe(1);
    const runtime = text.slice(text.lastIndexOf("\nFROM "));
    const buildStage = text.slice(0, text.lastIndexOf("\nFROM "));
    // Native addons: a toolchain and the dependencies' install scripts in the build stage.
    expect(buildStage).toMatch(/apt-get install[^\n]*python3[^\n]*make[^\n]*g\+\+/);
    expect(buildStage).toMatch(/npm ci\b/);
    expect(buildStage).toMatch(/npm rebuild/);
    expect(text).not.toMatch(/npm install\b/);
    expect(runtime).toContain(`COPY --from=${build} /app/node_modules`);
    expect(runtime).not.toMatch(/apt-get install/);
    // Non-root from the user switch on, and nothing after it runs as root again.
    const user = /^USER (\S+)/m.exec(runtime)?.[1];
    expect(user).toBeDefined();
    expect(["root", "0"]).not.toContain(user);
    expect(runtime.slice(runtime.indexOf("USER "))).not.toMatch(/^RUN /m);
    expect(runtime).toMatch(/^HEALTHCHECK .*--interval=\d+s/m);
    expect(runtime).toMatch(/^CMD \[.*"serve"\]$/m);
    expect(text).not.toMatch(/^ADD /m);
  });

  it("compose: three nodes on the compose kura.yaml, PostgreSQL, Redis, MinIO, and a proxy to them", async () => {
    const compose = parse(await readFile(join(DEPLOY, "compose.yaml"), "utf8"), { merge: true }) as {
      services: Record<string, Record<string, unknown>>;
    };
    const configText = await readFile(join(DEPLOY, "compose/kura.yaml"), "utf8");
    const services = compose.services;
    const nodes = Object.keys(services).filter((n) => /^kura-\d$/.test(n));
    expect(nodes).toEqual(["kura-1", "kura-2", "kura-3"]);
    for (const s of ["postgres", "redis", "minio", "proxy"]) expect(services[s], s).toBeDefined();
    const ids = new Set<string>();
    for (const name of nodes) {
      const node = services[name] as {
        environment: Record<string, string>;
        volumes: string[];
        healthcheck: { test: string[] };
        stop_grace_period: string;
        depends_on: Record<string, unknown>;
      };
      // The node loads its configuration with its own environment.
      const env = Object.fromEntries(
        Object.entries(node.environment).map(([k, v]) => [
          k,
          String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, "$1"),
        ]),
      );
      const config = await load(configText, env);
      expect(config.node.id).toBe(env.KURA_NODE__ID);
      ids.add(config.node.id as string);
      expect(config.database.backend).toBe("postgres");
      expect(config.kv.backend).toBe("redis");
      expect(config.storage.backend).toBe("s3");
      expect(config.storage.options).toMatchObject({ endpoint: "http://minio:9000", force_path_style: true });
      expect(config.search.backend).toBe("postgres");
      expect(config.vector.backend).toBe("pgvector");
      expect(node.volumes).toContain(`./compose/kura.yaml:${env.KURA_CONFIG}:ro`);
      expect(node.volumes.some((v) => v.endsWith(`:${config.data_dir}`))).toBe(true);
      expect(node.healthcheck.test.join(" ")).toContain(`http://127.0.0.1:${config.server.port}/readyz`);
      expect(Number.parseInt(node.stop_grace_period, 10)).toBeGreaterThanOrEqual(
        shutdownBoundSeconds(config),
      );
      for (const dep of ["postgres", "redis"]) expect(node.depends_on[dep]).toBeDefined();
      // The URLs name the compose services.
      expect((config.database as { url: string }).url).toContain("@postgres:5432/");
      expect((config.kv as { url: string }).url).toContain("redis://redis:");
    }
    expect(ids.size).toBe(3);
    // The proxy's configuration is included and sends to every node's port.
    const proxy = services.proxy as { volumes: string[]; ports: string[] };
    const mount = proxy.volumes.find((v) => v.includes("nginx.conf")) as string;
    const nginx = await readFile(join(DEPLOY, mount.split(":")[0] as string), "utf8");
    const port = (await load(configText)).server.port;
    for (const n of nodes) expect(nginx).toContain(`server ${n}:${port}`);
    expect(proxy.ports.length).toBe(1);
    // Redis must not evict (Kura warns otherwise); PostgreSQL carries pgvector.
    expect((services.redis as { command: string[] }).command.join(" ")).toContain(
      "--maxmemory-policy noeviction",
    );
    expect(String((services.postgres as { image: string }).image)).toContain("pgvector");
  });

  it("Kubernetes: probes, ports and grace period agree with the ConfigMap's kura.yaml and Kura's shutdown", async () => {
    const docs: Record<string, unknown>[] = [];
    for (const file of await yamlFiles(join(DEPLOY, "kubernetes")))
      for (const d of parseAllDocuments(await readFile(file, "utf8"))) docs.push(d.toJS());
    const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
    const [configMap] = byKind("ConfigMap") as { data: Record<string, string> }[];
    const [secret] = byKind("Secret") as { stringData: Record<string, string> }[];
    const [deployment] = byKind("Deployment") as unknown as Deployment[];
    const [service] = byKind("Service") as unknown as Service[];
    if (!configMap || !secret || !deployment || !service) throw new Error("a manifest is missing");
    const text = configMap?.data["kura.yaml"] as string;
    // Every env: reference is a key of the Secret.
    for (const [, name] of text.matchAll(/env:([A-Z0-9_]+)/g))
      expect(Object.keys(secret?.stringData ?? {})).toContain(name);
    const config = await load(text, secret?.stringData ?? {});
    expect(config.vector.backend).toBe("pgvector");
    expect(config.search.backend).toBe("postgres");
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0] as Container;
    const port = container.ports.find((p) => p.name === "http");
    expect(port?.containerPort).toBe(config.server.port);
    expect(container.readinessProbe.httpGet).toMatchObject({ path: "/readyz", port: "http" });
    expect(container.livenessProbe.httpGet).toMatchObject({ path: "/healthz", port: "http" });
    const preStop = Number(container.lifecycle?.preStop?.exec?.command?.at(-1) ?? 0);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + shutdownBoundSeconds(config));
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
    const env = Object.fromEntries(
      container.env.map((e: { name: string; value?: string }) => [e.name, e.value]),
    );
    const mount = container.volumeMounts.find((m: { name: string }) => m.name === "config");
    expect(env.KURA_CONFIG).toBe(`${mount?.mountPath}/kura.yaml`);
    expect(container.volumeMounts.map((m: { mountPath: string }) => m.mountPath)).toContain(config.data_dir);
    expect(container.envFrom[0]?.secretRef.name).toBe(
      (secret as unknown as { metadata: { name: string } }).metadata.name,
    );
    expect(service.spec.ports[0]?.targetPort).toBe("http");
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
  });

  it("every kura.yaml the cloud guides show loads, with its env names; the IAM policy is least privilege", async () => {
    const guides = (await readdir(GUIDES)).filter((f) => f.endsWith(".md")).sort();
    expect(guides).toEqual(["aws-ecs.md", "azure-container-apps.md", "gcp-cloud-run.md"]);
    const backends: string[] = [];
    for (const guide of guides) {
      const md = await readFile(join(GUIDES, guide), "utf8");
      const blocks = kuraBlocks(md);
      expect(blocks.length, guide).toBeGreaterThanOrEqual(1);
      for (const block of blocks) {
        const config = await load(block);
        backends.push(config.storage.backend);
        expect(config.vector.backend, guide).toBe("pgvector");
        // Every variable the configuration names is set by the deployment the guide shows.
        for (const [, name] of block.matchAll(/env:([A-Z0-9_]+)/g))
          expect(md, `${guide}: ${name}`).toMatch(new RegExp(`${name}\\b[\\s\\S]*${name}`));
      }
    }
    expect(backends.sort()).toEqual(["azure", "gcs", "s3"]);
    const aws = await readFile(join(GUIDES, "aws-ecs.md"), "utf8");
    const json = [...aws.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1] as string));
    const policy = json.find((j) => j.Statement?.some((s: { Effect: string }) => s.Effect === "Allow"));
    const actions = policy.Statement.flatMap((s: { Action: string[] }) => s.Action);
    expect(actions.sort()).toEqual([
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:GetObject",
      "s3:ListBucket",
      "s3:PutObject",
    ]);
    for (const s of policy.Statement) expect(String(s.Resource)).toMatch(/^arn:aws:s3:::kura-prod(\/\*)?$/);
    const task = json.find((j) => j.containerDefinitions);
    const [container] = task.containerDefinitions;
    const config = await load(kuraBlocks(aws)[0] as string);
    expect(container.portMappings[0].containerPort).toBe(config.server.port);
    expect(container.stopTimeout).toBeGreaterThanOrEqual(shutdownBoundSeconds(config));
    expect(container.healthCheck.command.join(" ")).toContain(`127.0.0.1:${config.server.port}/healthz`);
    const named = [...container.environment, ...container.secrets].map((e: { name: string }) => e.name);
    for (const [, name] of (kuraBlocks(aws)[0] as string).matchAll(/env:([A-Z0-9_]+)/g))
      expect(named).toContain(name);
  });
});
