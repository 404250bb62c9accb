import assert from "node:assert/strict";
import { encodeHeaders, HpackDecoder, huffmanDecode } from "./hpack.ts";

const hex = (s: string) =>
  new Uint8Array(s.replace(/\s/g, "").match(/../g)!.map((b) => parseInt(b, 16)));

Deno.test("huffmanDecode() decodes RFC 7541's examples", () => {
  const dec = (s: string) => new TextDecoder().decode(huffmanDecode(hex(s)));
  assert.equal(dec("f1e3 c2e5 f23a 6ba0 ab90 f4ff"), "www.example.com");
  assert.equal(dec("a8eb 1064 9cbf"), "no-cache");
  assert.equal(dec("6402"), "302");
  assert.equal(dec("aec3 771a 4b"), "private");
});

Deno.test("huffmanDecode() refuses bad padding", () => {
  // "a" is 00011: padded with ones (1f) it is valid, with zeros (18) not, nor with a byte more.
  assert.deepEqual(huffmanDecode(hex("1f")), new Uint8Array([0x61]));
  assert.throws(() => huffmanDecode(hex("18")), /padding/);
  assert.throws(() => huffmanDecode(hex("1fff")), /padding/);
});

Deno.test("HpackDecoder decodes RFC 7541 C.4's requests, keeping its dynamic table", () => {
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ]);
  // The second request names :authority by its dynamic-table index (62, "be").
  assert.deepEqual(d.decode(hex("8286 84be 5886 a8eb 1064 9cbf")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ]);
});

Deno.test("HpackDecoder evicts the oldest entries when the table is full", () => {
  // A 100-octet table holds one entry of "aaaa: bbbb..." (4 + 60 + 32 = 96), not two.
  const d = new HpackDecoder(100);
  const literal = (name: string, value: string) => {
    const e = new TextEncoder();
    return [0x40, name.length, ...e.encode(name), value.length, ...e.encode(value)];
  };
  d.decode(new Uint8Array(literal("aaaa", "x".repeat(60))));
  d.decode(new Uint8Array(literal("bbbb", "y".repeat(60))));
  assert.deepEqual(d.decode(new Uint8Array([0xbe])), [["bbbb", "y".repeat(60)]]);
  assert.throws(() => d.decode(new Uint8Array([0xbf])), /no table entry 63/);
  // A size update to 0 empties it; one above the announced limit is an error.
  d.decode(new Uint8Array([0x20]));
  assert.throws(() => d.decode(new Uint8Array([0xbe])), /no table entry 62/);
  assert.throws(() => d.decode(new Uint8Array([0x3f, 0x46])), /limit/);
});

Deno.test("encodeHeaders() writes literals that the decoder reads back, long ones too", () => {
  const headers: [string, string][] = [
    [":path", "/containerd.services.tasks.v1.Tasks/Get"],
    ["containerd-namespace", "k8s.io"],
    ["x-long", "v".repeat(300)],
  ];
  assert.deepEqual(new HpackDecoder().decode(encodeHeaders(headers)), headers);
});
