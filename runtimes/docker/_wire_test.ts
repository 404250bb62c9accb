import assert from "node:assert/strict";
import { DbgError } from "../../lib/errors.ts";
import { apiError, attachOutput, decodeBody, pickApiVersion } from "./_wire.ts";
import { concatBytes, type ResponseHead } from "../../lib/http1.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function head(status: number, headers: Record<string, string> = {}): ResponseHead {
  return { status, statusText: "", headers: new Map(Object.entries(headers)) };
}

function frame(stream: number, payload: string): Uint8Array {
  const data = enc(payload);
  const out = new Uint8Array(8 + data.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, data.length);
  out.set(data, 8);
  return out;
}

/**
 * attachOutput() over `chunks` as successive reads (each cut to the buffer's size): what came
 * out, as [stream, text], with successive chunks of one stream joined (a frame may come out in
 * pieces). Chunks are copied as they come: each is a view of a buffer that is read into again.
 */
async function output(chunks: Uint8Array[], tty = false): Promise<[number, string][]> {
  const left = [...chunks];
  const read = (buf: Uint8Array) => {
    const next = left.shift();
    if (!next) return Promise.resolve(null);
    if (next.length > buf.length) left.unshift(next.subarray(buf.length));
    buf.set(next.subarray(0, buf.length));
    return Promise.resolve(Math.min(next.length, buf.length));
  };
  const out: [number, string][] = [];
  for await (const c of attachOutput(read, { tty })) {
    const last = out.at(-1);
    if (last && last[0] === c.stream) last[1] += dec(c.data);
    else out.push([c.stream, dec(c.data)]);
  }
  return out;
}

Deno.test("attachOutput() handles several frames in one read", async () => {
  const wire = concatBytes([frame(1, "out\n"), frame(2, "err\n"), frame(1, "got hi\n")]);
  assert.deepEqual(await output([wire]), [[1, "out\n"], [2, "err\n"], [1, "got hi\n"]]);
});

Deno.test("attachOutput() makes one chunk of a stream's successive frames in a read", async () => {
  const wire = concatBytes([frame(1, "a"), frame(1, "bc"), frame(2, "e"), frame(1, "d")]);
  let reads = 0;
  const read = (buf: Uint8Array) => {
    if (reads++) return Promise.resolve(null);
    buf.set(wire);
    return Promise.resolve(wire.length);
  };
  const chunks = [];
  for await (const c of attachOutput(read, { tty: false })) chunks.push([c.stream, dec(c.data)]);
  assert.deepEqual(chunks, [[1, "abc"], [2, "e"], [1, "d"]]);
});

Deno.test("attachOutput() handles a frame split across reads", async () => {
  const wire = concatBytes([frame(2, "hello world"), frame(1, "x")]);
  for (const cut of [1, 4, 8, 9, 15, wire.length - 1]) {
    const got = await output([wire.slice(0, cut), wire.slice(cut)]);
    assert.deepEqual(got, [[2, "hello world"], [1, "x"]]);
  }
  const bytewise = Array.from(wire, (b) => Uint8Array.of(b));
  assert.deepEqual(await output(bytewise), [[2, "hello world"], [1, "x"]]);
});

Deno.test("attachOutput() reads frames longer than its buffer, and big-endian lengths", async () => {
  const big = "a".repeat(70_000) + "b".repeat(70_000);
  assert.deepEqual(await output([concatBytes([frame(1, big), frame(2, "e")])]), [
    [1, big],
    [2, "e"],
  ]);
});

Deno.test("attachOutput() drops empty frames and throws the daemon's error (stream 3)", async () => {
  assert.deepEqual(await output([frame(1, ""), frame(1, "a")]), [[1, "a"]]);
  const wire = concatBytes([frame(1, "a"), frame(3, "boom")]);
  await assert.rejects(
    output([wire.slice(0, 12), wire.slice(12)]),
    (err: unknown) =>
      err instanceof DbgError &&
      err.message === "The Docker daemon reported an error on the stream: boom",
  );
});

Deno.test("attachOutput() errors on a frame truncated at EOF", async () => {
  const wire = frame(1, "hello");
  for (const cut of [3, 10]) {
    await assert.rejects(
      output([wire.slice(0, cut)]),
      (err: unknown) => err instanceof DbgError && /middle of a frame/.test(err.message),
    );
  }
});

Deno.test("attachOutput() rejects raw TTY bytes as a bad header, and passes them with a TTY", async () => {
  await assert.rejects(output([enc("root@abc:/# ls\r\n")]), /bad multiplexed frame/);
  assert.deepEqual(await output([enc("root@abc:/# "), enc("ls\r\n")], true), [
    [1, "root@abc:/# ls\r\n"],
  ]);
});

Deno.test("decodeBody() parses JSON, keeps text and maps empty to undefined", () => {
  const json = head(200, { "content-type": "application/json" });
  assert.deepEqual(decodeBody(json, enc('{"Id":"abc"}')), { Id: "abc" });
  assert.equal(decodeBody(head(200, { "content-type": "text/plain" }), enc("OK")), "OK");
  assert.equal(decodeBody(json, new Uint8Array(0)), undefined);
  assert.throws(() => decodeBody(json, enc("{nope")), /invalid JSON/);
});

Deno.test("apiError() takes the message from JSON or plain text", () => {
  const a = apiError(head(404), { message: "No such container: x" });
  assert.equal(a.status, 404);
  assert.equal(a.message, "No such container: x");
  assert.ok(a instanceof DbgError);
  assert.equal(
    apiError(head(404), "No such container: nosuch\r\n").message,
    "No such container: nosuch",
  );
  assert.equal(
    apiError({ ...head(500), statusText: "Internal Server Error" }, undefined).message,
    "HTTP 500 Internal Server Error",
  );
});

Deno.test("pickApiVersion() takes min(daemon, 1.47) and refuses below 1.40", () => {
  assert.equal(pickApiVersion(head(200, { "api-version": "1.41" }), "x"), "1.41");
  assert.equal(pickApiVersion(head(200, { "api-version": "1.56" }), "x"), "1.47");
  assert.equal(pickApiVersion(head(200, { "api-version": "1.100" }), "x"), "1.47");
  assert.equal(pickApiVersion(head(200), "x"), "1.47");
  assert.throws(
    () => pickApiVersion(head(200, { "api-version": "1.39" }), "unix:///d.sock"),
    (err: unknown) =>
      err instanceof DbgError && err.message.includes("is too old: API 1.39") &&
      err.hint === "Upgrade Docker to 19.03 or newer",
  );
  assert.throws(
    () => pickApiVersion(head(404), "tcp://x:1"),
    /does not answer like a Docker daemon/,
  );
});
