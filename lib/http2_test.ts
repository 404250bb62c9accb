import assert from "node:assert/strict";
import { Http2Connection } from "./http2.ts";

/**
 * Deno's own server (hyper) on a Unix socket, which speaks h2c to a client that starts with
 * HTTP/2's preface. It echoes the body (or says hello), with the request's x-a header and the
 * body's length as headers; /slow never answers, and resolves `reset` when the client resets it.
 */
let reset = Promise.withResolvers<void>();

async function withServer(fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dbg-h2-" });
  const path = `${dir}/h2.sock`;
  const server = Deno.serve({ path, onListen() {} }, async (req) => {
    const body = new Uint8Array(await req.arrayBuffer());
    if (new URL(req.url).pathname === "/slow") {
      await new Promise((r) => req.signal.addEventListener("abort", r));
      reset.resolve();
    }
    return new Response(body.length ? body : "hello", {
      headers: { "x-a": req.headers.get("x-a") ?? "", "x-len": String(body.length) },
    });
  });
  try {
    await fn(path);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

const post = (path: string, body = new Uint8Array(), headers = {}) => ({
  method: "POST",
  path,
  headers,
  body,
});

Deno.test("Http2Connection sends headers and a body, and reads the answer", async () => {
  await withServer(async (path) => {
    const c = await Http2Connection.open(path);
    const r = await c.request(post("/x", undefined, { "X-A": "b" }));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-a"), "b");
    assert.equal(new TextDecoder().decode(r.body), "hello");
    c.close();
  });
});

Deno.test("Http2Connection moves bodies larger than the flow-control windows, many at once", async () => {
  await withServer(async (path) => {
    const c = await Http2Connection.open(path);
    const bodies = [1, 2, 3].map((n) => new Uint8Array(300_000 + n).fill(n));
    const answers = await Promise.all(bodies.map((b) => c.request(post("/echo", b))));
    answers.forEach((r, i) => assert.deepEqual(r.body, bodies[i]));
    c.close();
  });
});

Deno.test("Http2Connection ends a request on abort and goes on with others", async () => {
  await withServer(async (path) => {
    const c = await Http2Connection.open(path);
    const signal = AbortSignal.timeout(50);
    reset = Promise.withResolvers();
    await assert.rejects(c.request({ ...post("/slow"), signal }), { name: "TimeoutError" });
    await reset.promise;
    assert.equal((await c.request(post("/x"))).status, 200);
    c.close();
  });
});

Deno.test("Http2Connection fails what waits when the server goes, and says it is closed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dbg-h2-" });
  const path = `${dir}/h2.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const accepted = listener.accept();
  const c = await Http2Connection.open(path);
  const waiting = c.request(post("/x"));
  (await accepted).close();
  // (What it says is the socket's: the server's end, or a broken pipe if a write came first.)
  await assert.rejects(waiting);
  assert.equal(c.closed, true);
  listener.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("Http2Connection refuses a header with a line break", async () => {
  await withServer(async (path) => {
    const c = await Http2Connection.open(path);
    await assert.rejects(c.request(post("/x", undefined, { a: "b\r\nc: d" })), TypeError);
    c.close();
  });
});
