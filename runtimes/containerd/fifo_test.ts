import assert from "node:assert/strict";
import { concatBytes } from "../../lib/http1.ts";
import type { OutputChunk } from "../../lib/adapter.ts";
import { fifoSources } from "./fifo.ts";

Deno.test("fifoSources() read FIFOs to their ends, each chunk with its stream", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dbg-fifo-test-" });
  const paths = [`${dir}/out`, `${dir}/err`];
  try {
    assert.ok((await new Deno.Command("mkfifo", { args: paths }).output()).success);
    const opening = Promise.all(paths.map((p) => Deno.open(p, { read: true })));
    const writers = await Promise.all(paths.map((p) => Deno.open(p, { write: true })));
    const [out, err] = await opening;
    const sources = fifoSources([
      { file: out, path: paths[0], stream: 1 },
      { file: err, path: paths[1], stream: 2 },
    ]);
    const got: Record<number, Uint8Array[]> = { 1: [], 2: [] };
    const reading = Promise.all(sources.map(async (s: AsyncIterable<OutputChunk>) => {
      for await (const c of s) got[c.stream].push(c.data.slice());
    }));
    // A byte on each, a pause (the reader waits), more than a pipe holds, then the ends.
    const big = new Uint8Array(300_000).map((_, i) => i % 251);
    for (const w of writers) await w.write(new Uint8Array([7]));
    await new Promise((r) => setTimeout(r, 50));
    const rest = writers.map(async (w) => {
      for (let at = 0; at < big.length;) at += await w.write(big.subarray(at));
      w.close();
    });
    await Promise.all([...rest, reading]);
    for (const s of [1, 2]) {
      assert.deepEqual(concatBytes(got[s]), concatBytes([new Uint8Array([7]), big]));
    }
    out.close();
    err.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
