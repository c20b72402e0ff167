import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor } from "../../src/core/cursor.js";
import { decodeOffset, encodeOffset } from "../../src/core/tokenize.js";

describe("page cursors (core/cursor.ts)", () => {
  it("round-trip their fields, only for the tag they were made with", () => {
    const c = encodeCursor({ k: "h1", ch: "chat-1", c: 1_700_000_000_000, i: "id" });
    expect(c).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(c, { k: "h1", ch: "chat-1" })).toEqual({
      k: "h1",
      ch: "chat-1",
      c: 1_700_000_000_000,
      i: "id",
    });
    expect(decodeCursor(c, { k: "h1", ch: "chat-2" })).toBeUndefined();
    expect(decodeCursor(c, { k: "o1" })).toBeUndefined();
  });

  it("decode hostile input to undefined, never throw", () => {
    const hostile: unknown[] = [
      undefined,
      null,
      42,
      "",
      "not base64url!",
      "%00",
      Buffer.from("[1,2]").toString("base64url"),
      Buffer.from("null").toString("base64url"),
      Buffer.from('"k"').toString("base64url"),
      Buffer.from("{broken").toString("base64url"),
      "A".repeat(5000),
    ];
    for (const h of hostile) expect(decodeCursor(h, { k: "h1" })).toBeUndefined();
  });

  it("search offsets are cursors of their own kind", () => {
    expect(decodeOffset(encodeOffset(40))).toBe(40);
    expect(decodeOffset(undefined)).toBe(0);
    expect(decodeOffset(encodeCursor({ k: "o", o: -1 }))).toBeUndefined();
    expect(decodeOffset(encodeCursor({ k: "o", o: 1.5 }))).toBeUndefined();
    expect(decodeOffset(encodeCursor({ k: "h1", o: 3 }))).toBeUndefined();
  });
});
