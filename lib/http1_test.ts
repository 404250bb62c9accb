import assert from "node:assert/strict";
import {
  bodyDecoder,
  bodyFraming,
  ChunkedDecoder,
  concatBytes,
  encodeRequestHead,
  findHeadEnd,
  jsonLines,
  parseResponseHead,
  type ResponseHead,
} from "./http1.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("encodeRequestHead() writes the request line, headers and a blank line", () => {
  const bytes = encodeRequestHead("POST", "/v1.41/containers/create", {
    Host: "docker",
    "Content-Length": "0",
  });
  assert.equal(
    dec(bytes),
    "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n",
  );
});

Deno.test("encodeRequestHead() refuses a line break in a path or header", () => {
  assert.throws(() => encodeRequestHead("GET", "/x\r\nEvil: 1", {}), TypeError);
  assert.throws(() => encodeRequestHead("GET", "/x", { A: "b\nc" }), TypeError);
});

Deno.test("findHeadEnd() finds the end of the head, or -1", () => {
  assert.equal(findHeadEnd(enc("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody")), 25);
  assert.equal(findHeadEnd(enc("HTTP/1.1 200 OK\r\nA: b\r\n")), -1);
});

Deno.test("parseResponseHead() reads the status and the headers, by lowercase name", () => {
  const h = parseResponseHead(
    enc(
      "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nApi-Version: 1.41",
    ),
  );
  assert.equal(h.status, 101);
  assert.equal(h.statusText, "UPGRADED");
  assert.equal(h.headers.get("content-type"), "application/vnd.docker.raw-stream");
  assert.equal(h.headers.get("api-version"), "1.41");
});

Deno.test("parseResponseHead() accepts a status line without a reason", () => {
  assert.equal(parseResponseHead(enc("HTTP/1.1 204")).status, 204);
});

Deno.test("parseResponseHead() rejects what is not HTTP", () => {
  assert.throws(
    () => parseResponseHead(enc("SSH-2.0-OpenSSH_9.2")),
    /Bad HTTP response: not an HTTP\/1.1 status line/,
  );
  const bad = (d: string) => new RangeError(d);
  assert.throws(() => parseResponseHead(enc("HTTP/1.1 200 OK\r\nnocolon"), bad), RangeError);
});

function head(status: number, headers: Record<string, string> = {}): ResponseHead {
  return { status, statusText: "", headers: new Map(Object.entries(headers)) };
}

Deno.test("bodyFraming() has no body for HEAD, 1xx, 204 and 304", () => {
  for (const s of [101, 204, 304]) assert.deepEqual(bodyFraming("GET", head(s)), { kind: "none" });
  assert.deepEqual(bodyFraming("HEAD", head(200, { "content-length": "2" })), { kind: "none" });
});

Deno.test("bodyFraming() prefers chunked over Content-Length, else reads to EOF", () => {
  assert.deepEqual(
    bodyFraming("POST", head(200, { "transfer-encoding": "chunked", "content-length": "3" })),
    { kind: "chunked" },
  );
  assert.deepEqual(bodyFraming("GET", head(200, { "content-length": "12" })), {
    kind: "length",
    length: 12,
  });
  assert.deepEqual(bodyFraming("POST", head(404)), { kind: "eof" });
  assert.throws(
    () => bodyFraming("GET", head(200, { "content-length": "x" })),
    /Bad HTTP response: bad Content-Length/,
  );
});

Deno.test("bodyDecoder() stops at Content-Length and reports a short body", () => {
  const d = bodyDecoder({ kind: "length", length: 5 });
  assert.deepEqual(d.push(enc("abc")).map(dec), ["abc"]);
  assert.equal(d.done, false);
  assert.equal(d.end(), false);
  assert.deepEqual(d.push(enc("defgh")).map(dec), ["de"]);
  assert.equal(d.done, true);
  assert.equal(d.end(), true);
});

Deno.test("ChunkedDecoder decodes chunks split at every byte", () => {
  const wire = enc("5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\nextra");
  const d = new ChunkedDecoder();
  const out: Uint8Array[] = [];
  for (let i = 0; i < wire.length; i++) out.push(...d.push(wire.subarray(i, i + 1)));
  assert.equal(dec(concatBytes(out)), "hello, world");
  assert.equal(d.done, true);
});

Deno.test("ChunkedDecoder decodes several chunks in one read", () => {
  const d = new ChunkedDecoder();
  const out = d.push(enc('1d\r\n{"Error":null,"StatusCode":7}\r\n0\r\n\r\n'));
  assert.equal(dec(concatBytes(out)), '{"Error":null,"StatusCode":7}');
  assert.equal(d.end(), true);
});

Deno.test("ChunkedDecoder rejects a bad chunk size and data longer than its size", () => {
  assert.throws(() => new ChunkedDecoder().push(enc("zz\r\n")), /bad chunk size/);
  assert.throws(() => new ChunkedDecoder().push(enc("2\r\nabc\r\n")), /longer than its size/);
});

Deno.test("jsonLines() yields one object per line across chunk boundaries", async () => {
  const body = ReadableStream.from([
    enc('{"status":"Pulling fs layer","id":"a"}\r\n{"sta'),
    enc('tus":"Done"}\r\n\r\n{"errorDetail":{"message":"denied"}}'),
  ]);
  assert.deepEqual(await Array.fromAsync(jsonLines(body)), [
    { status: "Pulling fs layer", id: "a" },
    { status: "Done" },
    { errorDetail: { message: "denied" } },
  ]);
});

Deno.test("jsonLines() rejects a line that is not JSON", async () => {
  await assert.rejects(
    Array.fromAsync(jsonLines(ReadableStream.from([enc("oops\n")]))),
    /not a JSON line/,
  );
});
