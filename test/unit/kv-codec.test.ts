import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { COMPRESS_MIN_BYTES, decodeFramed, encodeFramed } from "../../src/adapters/kv/common.js";
import { lz4Bound, lz4Compress, lz4Decompress } from "../../src/adapters/kv/lz4.js";

const hasLz4Cli = spawnSync("lz4", ["--version"]).status === 0;
const JSON_SAMPLE = Buffer.from(
  JSON.stringify(Array.from({ length: 2000 }, (_, i) => ({ id: i, name: `user-${i % 37}` }))),
);

const samples: [string, Buffer][] = [
  ["empty", Buffer.alloc(0)],
  ["tiny", Buffer.from("abc")],
  ["13 bytes", Buffer.from("abcdefghijklm")],
  ["run", Buffer.alloc(100_000, 7)],
  ["random", randomBytes(5000)],
  [
    "json",
    Buffer.from(JSON.stringify(Array.from({ length: 2000 }, (_, i) => ({ id: i, name: `user-${i % 37}` })))),
  ],
  ["repeat at distance > 64 KiB", Buffer.concat([randomBytes(70_000), randomBytes(10)])],
  ["overlapping pattern", Buffer.from("ab".repeat(5000) + "xyz".repeat(3000))],
];

/** One LZ4 frame around one block, with the header the lz4 CLI writes for `-B4 --no-frame-crc`. */
function frame(block: Buffer, header: Buffer): Buffer {
  const size = Buffer.alloc(4);
  size.writeUInt32LE(block.length);
  return Buffer.concat([header, size, block, Buffer.alloc(4)]);
}

describe("LZ4 block codec", () => {
  it.each(samples)("round-trips %s within the worst-case bound", (_, input) => {
    const compressed = lz4Compress(input);
    expect(compressed.length).toBeLessThanOrEqual(lz4Bound(input.length));
    expect(lz4Decompress(compressed, input.length).equals(input)).toBe(true);
  });

  it("compresses what repeats", () => {
    const json = JSON_SAMPLE;
    expect(lz4Compress(json).length).toBeLessThan(json.length / 3);
    expect(lz4Compress(Buffer.alloc(100_000, 7)).length).toBeLessThan(1000);
  });

  it("rejects corrupt blocks instead of reading out of bounds", () => {
    const good = lz4Compress(JSON_SAMPLE);
    expect(() => lz4Decompress(good.subarray(0, good.length - 3), JSON_SAMPLE.length)).toThrow(RangeError);
    expect(() => lz4Decompress(Buffer.from([0x0f, 0x00, 0x00]), 10)).toThrow(RangeError);
    expect(() => lz4Decompress(Buffer.from([0x10, 0x41, 0x05, 0x00]), 10)).toThrow(/offset/);
    expect(() => lz4Decompress(good, 5)).toThrow(RangeError);
  });

  it.skipIf(!hasLz4Cli)("interoperates with the reference lz4 tool both ways", () => {
    const input = JSON_SAMPLE;
    const cli = execFileSync("lz4", ["-B4", "--no-frame-crc", "-c"], { input });
    const header = cli.subarray(0, 7); // magic, FLG, BD, header checksum
    const blockSize = cli.readUInt32LE(7);
    expect(blockSize & 0x80000000).toBe(0); // a compressed block
    const block = cli.subarray(11, 11 + blockSize);
    expect(lz4Decompress(block, input.length).equals(input)).toBe(true);
    const ours = frame(lz4Compress(input), header);
    expect(execFileSync("lz4", ["-d", "-c"], { input: ours }).equals(input)).toBe(true);
  });
});

describe("framed KV values", () => {
  it("stores safe integers as decimal, compresses large repetitive values, keeps random ones raw", () => {
    expect(encodeFramed("k", 42, 1024, "t").toString("latin1")).toBe("n42");
    expect(encodeFramed("k", -7, 1024, "t").toString("latin1")).toBe("n-7");
    const text = { text: "the same words again ".repeat(200) };
    const packedText = encodeFramed("k", text, 1 << 20, "t");
    expect(String.fromCharCode(packedText[0] as number)).toBe("z");
    expect(packedText.length).toBeLessThan(1000);
    expect(decodeFramed("k", packedText, "t")).toEqual(text);
    const random = randomBytes(COMPRESS_MIN_BYTES * 4);
    const packedRandom = encodeFramed("k", random, 1 << 20, "t");
    expect(String.fromCharCode(packedRandom[0] as number)).toBe("m");
    expect(Buffer.from(decodeFramed("k", packedRandom, "t") as Uint8Array).equals(random)).toBe(true);
    for (const v of [1.5, "s", null, [1, 2], { a: new Date(0) }]) {
      expect(decodeFramed("k", encodeFramed("k", v, 1024, "t"), "t")).toEqual(v);
    }
  });

  it("reports damaged values as KV_VALUE_CORRUPT", () => {
    expect(() => decodeFramed("k", Buffer.from("?abc"), "t")).toThrow(
      expect.objectContaining({ code: "KV_VALUE_CORRUPT" }),
    );
    expect(() => decodeFramed("k", Buffer.from("nabc"), "t")).toThrow(
      expect.objectContaining({ code: "KV_VALUE_CORRUPT" }),
    );
    const z = encodeFramed("k", { text: "x".repeat(5000) }, 1 << 20, "t");
    expect(() => decodeFramed("k", z.subarray(0, z.length - 4), "t")).toThrow(
      expect.objectContaining({ code: "KV_VALUE_CORRUPT" }),
    );
  });
});
