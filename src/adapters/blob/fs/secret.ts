/**
 * The secret that signs Kura's own presigned URLs, kept in a file (0600) created on first use.
 * One place reads or creates it: the fs store, and `Kura.open`, which hands the same secret to
 * every fs store and to `kura serve` so they all sign and verify alike.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { RESERVED_DIR } from "./layout.js";

/** Where an fs store at `basePath` keeps its generated secret by default. */
export function defaultSecretFile(basePath: string): string {
  return join(basePath, RESERVED_DIR, "presign.key");
}

/** The secret in `path`, creating the file with 32 random bytes (hex) if it does not exist. */
export async function readOrCreateSecretFile(path: string): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  try {
    await writeFile(path, randomBytes(32).toString("hex"), { flag: "wx", mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  return (await readFile(path, "utf8")).trim();
}
