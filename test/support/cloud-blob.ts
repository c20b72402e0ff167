/**
 * What the cloud blob adapters' own tests (`test/adapters/azure.test.ts`, `gcs.test.ts`) check
 * alike: two stores under different prefixes of one container, and the option parser reporting
 * every problem at once.
 */
import { expect } from "vitest";
import { isKuraError } from "../../src/core/errors.js";
import type { BlobStore } from "../../src/ports/blob-store.js";

/**
 * A store opened with `prefix: "tenant-a"` and one with `"tenant-b/"` keep below their prefixes:
 * each reads, lists and deletes only its own keys (listed without the prefix), a cursor only
 * continues the listing it came from, and the container holds `tenant-a/x/1` and `tenant-b/x/1`
 * and nothing else there (`stored`: the names in it, or those starting with `tenant-`). Leaves
 * `tenant-b/x/1` stored.
 */
export async function expectPrefixesKept(
  open: (prefix: string) => Promise<BlobStore>,
  stored: () => Promise<string[]>,
): Promise<{ a: BlobStore; b: BlobStore }> {
  const a = await open("tenant-a");
  const b = await open("tenant-b/");
  await a.put("x/1", Buffer.from("a1"));
  await b.put("x/1", Buffer.from("b1"));
  expect((await a.getBuffer("x/1")).data.toString()).toBe("a1");
  expect((await a.list("x/")).items.map((i) => i.key)).toEqual(["x/1"]);
  expect(a.location).toMatch(/\/tenant-a$/);
  // A cursor only continues the listing it came from.
  await a.put("x/2", Buffer.from("a2"));
  const first = await a.list("x/", { limit: 1 });
  expect(first.cursor).toBeDefined();
  await expect(a.list("y/", { cursor: first.cursor as string })).rejects.toMatchObject({
    code: "CURSOR_INVALID",
  });
  expect((await a.list("x/", { cursor: first.cursor as string })).items.map((i) => i.key)).toEqual(["x/2"]);
  await a.delete("x/2");
  expect((await stored()).sort()).toEqual(["tenant-a/x/1", "tenant-b/x/1"]);
  await a.delete(["x/1", "x/never"]);
  expect(await a.exists("x/1")).toBe(false);
  expect(await b.exists("x/1")).toBe(true);
  return { a, b };
}

/** `parse` fails with CONFIG_INVALID naming (at least) every path of `paths`. */
export function expectOptionProblems(parse: () => unknown, paths: readonly string[]): void {
  try {
    parse();
    expect.unreachable();
  } catch (e) {
    expect(isKuraError(e) && e.code).toBe("CONFIG_INVALID");
    const problems = (e as { context: { problems?: { path: string }[] } }).context.problems ?? [];
    expect(problems.map((p) => p.path)).toEqual(expect.arrayContaining([...paths]));
  }
}
