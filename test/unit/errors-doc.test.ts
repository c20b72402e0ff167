import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ERROR_CODES, isKuraError, KuraError, toKuraError } from "../../src/core/errors.js";

describe("error-code registry and docs/errors.md", () => {
  const doc = readFileSync(new URL("../../docs/errors.md", import.meta.url), "utf8");
  const documented = new Map<string, string>();
  for (const m of doc.matchAll(/^## ([A-Z0-9_]+)\n\nKind: `([A-Za-z]+)`/gm)) documented.set(m[1]!, m[2]!);

  it("documents every registered code with its kind", () => {
    for (const [code, [kind]] of Object.entries(ERROR_CODES)) {
      expect(documented.get(code), `docs/errors.md lacks ${code}`).toBe(kind);
    }
  });

  it("documents no code that does not exist", () => {
    const headings = [...doc.matchAll(/^## (\S+)/gm)].map((m) => m[1]!);
    for (const code of headings)
      expect(Object.keys(ERROR_CODES), `docs/errors.md names unknown ${code}`).toContain(code);
  });
});

describe("KuraError", () => {
  it("takes kind and retryability from the registry", () => {
    const e = new KuraError("BLOB_BACKEND_UNAVAILABLE", "down", {
      operation: "blob.put",
      context: { key: "k" },
    });
    expect(e.kind).toBe("Unavailable");
    expect(e.retryable).toBe(true);
    expect(new KuraError("KEY_INVALID", "bad").retryable).toBe(false);
    expect(e.toJSON()).toMatchObject({
      code: "BLOB_BACKEND_UNAVAILABLE",
      operation: "blob.put",
      context: { key: "k" },
    });
    expect(isKuraError(e, "Unavailable")).toBe(true);
    expect(isKuraError(e, "NotFound")).toBe(false);
  });

  it("wraps foreign errors as Unexpected and keeps the cause", () => {
    const cause = new TypeError("boom");
    const e = toKuraError(cause, "x.op");
    expect(e.code).toBe("UNEXPECTED");
    expect(e.cause).toBe(cause);
    expect(toKuraError(e, "other")).toBe(e);
  });
});
