import assert from "node:assert/strict";
import { ApiError, Rest } from "./rest.ts";

const te = new TextEncoder();

/**
 * An HTTP/1.1 server on loopback that answers each request with `answer` (its request line and
 * the connection's number), closing the connection after it when told to.
 */
function serve(answer: (request: string, conn: number) => { reply: string; close?: boolean }) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let conns = 0;
  (async () => {
    for await (const c of listener) {
      const n = conns++;
      (async () => {
        const buf = new Uint8Array(64 << 10);
        let text = "";
        for (;;) {
          const got = await c.read(buf);
          if (got === null) break;
          text += new TextDecoder().decode(buf.subarray(0, got));
          let end;
          while ((end = text.indexOf("\r\n\r\n")) >= 0) {
            const length = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
            if (text.length < end + 4 + length) break;
            const { reply, close } = answer(text.slice(0, text.indexOf("\r\n")), n);
            text = text.slice(end + 4 + length);
            await c.write(te.encode(reply));
            if (close) return c.close();
          }
        }
        c.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  const rest = new Rest(
    `http://127.0.0.1:${listener.addr.port}`,
    () => Promise.resolve({ headers: { Authorization: "Bearer t" }, tls: {} }),
  );
  return { rest, conns: () => conns, [Symbol.dispose]: () => listener.close() };
}

const json = (body: string, extra = "") =>
  `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`;

Deno.test("Rest keeps a connection for the next request, and replaces one the server closed", async () => {
  using s = serve((req, conn) => ({
    reply: json(JSON.stringify({ req, conn })),
    close: req.includes("last"),
  }));
  assert.deepEqual(await s.rest.json("GET", "/a"), { req: "GET /a HTTP/1.1", conn: 0 });
  assert.deepEqual(await s.rest.json("PATCH", "/b", { body: { x: 1 } }), {
    req: "PATCH /b HTTP/1.1",
    conn: 0,
  });
  // The server closes the kept connection after this answer without saying so.
  await s.rest.json("GET", "/last");
  assert.deepEqual(await s.rest.json("GET", "/c"), { req: "GET /c HTTP/1.1", conn: 1 });
  assert.equal(s.conns(), 2);
});

Deno.test("Rest reads chunked answers, and a failed call's status and body", async () => {
  using s = serve((req) => {
    if (req.startsWith("GET /gone")) {
      const body = '{"kind":"Status","code":404}';
      return { reply: `HTTP/1.1 404 Not Found\r\nContent-Length: ${body.length}\r\n\r\n${body}` };
    }
    const chunks = ['{"items":', "[1,2", ",3]}"].map((c) => `${c.length.toString(16)}\r\n${c}\r\n`);
    return {
      reply: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunks.join("")}0\r\n\r\n`,
    };
  });
  assert.deepEqual(await s.rest.json("GET", "/list"), { items: [1, 2, 3] });
  await assert.rejects(
    () => s.rest.json("GET", "/gone"),
    (e) => e instanceof ApiError && e.code === 404 && e.body.includes('"code":404'),
  );
  assert.deepEqual(await s.rest.json("GET", "/list"), { items: [1, 2, 3] });
  assert.equal(s.conns(), 1);
});

Deno.test("Rest.watch() calls back for each line across chunks, and stops", async () => {
  const events = ['{"type":"ADDED","object":{"n":1}}\n{"type":"MOD', 'IFIED","object":{"n":2}}\n'];
  using s = serve(() => ({
    reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
      events.map((c) => `${te.encode(c).length.toString(16)}\r\n${c}\r\n`).join(""),
  }));
  const seen: string[] = [];
  const ended = Promise.withResolvers<unknown>();
  const stop = await s.rest.watch(
    "/pods",
    { fieldSelector: "metadata.name=p" },
    (type, obj) => seen.push(`${type} ${(obj as { n: number }).n}`),
    (err) => ended.resolve(err),
  );
  while (seen.length < 2) await new Promise((r) => setTimeout(r, 5));
  stop();
  assert.equal(await ended.promise, null);
  assert.deepEqual(seen, ["ADDED 1", "MODIFIED 2"]);
});
