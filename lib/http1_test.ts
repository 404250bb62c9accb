import assert from "node:assert/strict";
import { encodeRequestHead, findHeadEnd, parseResponseHead } from "./http1.ts";

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

Deno.test("parseResponseHead() reads the status and case-insensitive headers", () => {
  const h = parseResponseHead(
    enc(
      "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nApi-Version: 1.41",
    ),
  );
  assert.equal(h.status, 101);
  assert.equal(h.statusText, "UPGRADED");
  assert.equal(h.headers.get("content-type"), "application/vnd.docker.raw-stream");
  assert.equal(h.headers.get("API-VERSION"), "1.41");
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
