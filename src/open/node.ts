/**
 * This node's id (DIST-1): `node.id` when configured, else one generated the first time and kept
 * in `<data_dir>/node-id`, so a restarted node resumes its own outbox consumers. Processes that
 * share a data directory share its embedded indexes too, and so they are one node.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { KuraConfig } from "../config/index.js";
import { KuraError } from "../core/errors.js";

export const NODE_ID_FILE = "node-id";
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export async function resolveNodeId(config: KuraConfig): Promise<string> {
  if (config.node.id !== null) return config.node.id;
  const file = join(config.data_dir, NODE_ID_FILE);
  const existing = await readId(file);
  if (existing !== undefined) return existing;
  await mkdir(config.data_dir, { recursive: true });
  const id = `n-${randomBytes(6).toString("hex")}`;
  try {
    // `wx`: of two processes starting at once on one directory, one writes and both read its id.
    await writeFile(file, `${id}\n`, { flag: "wx" });
    return id;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw unreadable(file, e);
    const written = await readId(file);
    if (written === undefined) throw unreadable(file);
    return written;
  }
}

async function readId(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw unreadable(file, e);
  }
  const id = text.trim();
  if (!NODE_ID.test(id)) throw unreadable(file);
  return id;
}

function unreadable(file: string, cause?: unknown): KuraError {
  return new KuraError(
    "CONFIG_INVALID",
    `${file} does not hold a node id (1–64 of A-Z a-z 0-9 . _ -): remove it or set node.id`,
    { operation: "kura.open", ...(cause === undefined ? {} : { cause }) },
  );
}
