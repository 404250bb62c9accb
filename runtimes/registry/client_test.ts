import assert from "node:assert/strict";
import { readCapped, RegistryLied } from "./client.ts";

const body = (n: number, headers: Record<string, string> = {}) =>
  new Response(new Uint8Array(n).fill(7), { headers });

Deno.test("readCapped() reads up to its cap, and an exact size exactly", async () => {
  assert.equal((await readCapped(body(10), 10, "blob", true)).length, 10);
  assert.equal((await readCapped(body(3), 10, "manifest")).length, 3);
  await assert.rejects(() => readCapped(body(11), 10, "blob"), RegistryLied);
  await assert.rejects(() => readCapped(body(9), 10, "blob", true), /sent 9 bytes of blob, not 10/);
  // A length header over the cap is refused before any byte is read.
  const stream = new ReadableStream({ pull: () => assert.fail("read") });
  const lying = new Response(stream, { headers: { "content-length": "99" } });
  await assert.rejects(() => readCapped(lying, 10, "blob"), /sent 99 bytes of blob, more than/);
});
