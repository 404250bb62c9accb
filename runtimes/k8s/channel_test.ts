import assert from "node:assert/strict";
import { ChannelSocket, parseStatus, refusal, resizePayload } from "./channel.ts";
import { ChannelConn, frame, type SocketTarget } from "./websocket.ts";

const PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const te = new TextEncoder();

/** A message: the channel byte, then the text or bytes. */
const msg = (channel: number, body: string | Uint8Array) => {
  const b = typeof body === "string" ? te.encode(body) : body;
  const out = new Uint8Array(b.length + 1);
  out[0] = channel;
  out.set(b, 1);
  return out;
};

/**
 * A WebSocket server on loopback (Deno's own) that runs `session` for each connection, or
 * answers with `refuse` instead of upgrading.
 */
function serve(
  session: (ws: WebSocket) => void,
  o: { refuse?: Response; idleTimeout?: number } = {},
) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    if (o.refuse) return o.refuse;
    const { socket, response } = Deno.upgradeWebSocket(req, {
      protocol: req.headers.get("sec-websocket-protocol")?.split(",")[0].trim(),
      idleTimeout: o.idleTimeout,
    });
    socket.binaryType = "arraybuffer";
    socket.onopen = () => session(socket);
    return response;
  });
  const target: SocketTarget = {
    url: `ws://127.0.0.1:${server.addr.port}/attach?x=1`,
    headers: { Authorization: "Bearer t" },
    tls: {},
  };
  return { target, [Symbol.asyncDispose]: () => server.shutdown() };
}

/** Everything a ChannelSocket's output carries, by stream. */
async function collect(socket: ChannelSocket): Promise<Record<number, string>> {
  const out: Record<number, string> = {};
  for await (const c of socket.output) {
    out[c.stream] = (out[c.stream] ?? "") + new TextDecoder().decode(c.data);
  }
  return out;
}

Deno.test("ChannelSocket reads each channel's output in order, then the status", async () => {
  await using s = serve((ws) => {
    ws.send(msg(1, "")); // the ready signal: no output
    for (let i = 0; i < 50; i++) ws.send(msg(i % 5 ? 1 : 2, `${i},`));
    ws.send(msg(1, "x".repeat(600_000))); // more than one read buffer
    ws.send(msg(3, JSON.stringify({ status: "Success" })));
    ws.close();
  });
  const socket = await ChannelSocket.open(s.target);
  assert.equal(socket.protocol, PROTOCOLS[0]);
  assert.ok(socket.canCloseStdin);
  const out = await collect(socket);
  const ids = (k: number) => [...Array(50).keys()].filter((i) => (i % 5 ? 1 : 2) === k).join(",");
  assert.equal(out[1], `${ids(1)},${"x".repeat(600_000)}`);
  assert.equal(out[2], `${ids(2)},`);
  assert.deepEqual(await socket.closed, {
    status: "Success",
    message: undefined,
    reason: undefined,
  });
  assert.equal(socket.received, out[1].length + out[2].length);
});

Deno.test("ChannelConn joins the messages of one channel that one read brings", async () => {
  await using s = serve((ws) => {
    for (let i = 0; i < 100; i++) ws.send(msg(1, "abcd"));
    ws.close();
  });
  const conn = await ChannelConn.open(s.target, PROTOCOLS);
  await new Promise((r) => setTimeout(r, 100)); // everything sent, before the first read
  const pieces: string[] = [];
  for (let p; (p = await conn.next());) pieces.push(new TextDecoder().decode(p.data));
  assert.equal(pieces.join(""), "abcd".repeat(100));
  assert.ok(pieces.length < 100, `${pieces.length} pieces`);
});

Deno.test("ChannelSocket sends masked messages of every length form, and resizes", async () => {
  const got: Uint8Array[] = [];
  const done = Promise.withResolvers<void>();
  await using s = serve((ws) => {
    ws.onmessage = (ev) => {
      got.push(new Uint8Array(ev.data));
      if (got.length === 5) done.resolve();
    };
  });
  const socket = await ChannelSocket.open(s.target);
  const sizes = [0, 5, 200, 70_000];
  for (const n of sizes) {
    socket.send(0, Uint8Array.from({ length: n }, (_, i) => i * 7));
  }
  socket.resize(24, 80);
  await socket.drained(0);
  await done.promise;
  sizes.forEach((n, i) => {
    assert.deepEqual(got[i], msg(0, Uint8Array.from({ length: n }, (_, i) => i * 7)));
  });
  assert.deepEqual(got[4], msg(4, resizePayload(24, 80)));
  socket.close();
  await socket.closed;
});

Deno.test("ChannelSocket answers pings: the server keeps an idle socket open", async () => {
  const closed = Promise.withResolvers<void>();
  await using s = serve((ws) => {
    ws.onclose = () => closed.resolve();
    setTimeout(() => {
      ws.send(msg(1, "still here"));
      ws.close();
    }, 2500);
  }, { idleTimeout: 1 });
  const socket = await ChannelSocket.open(s.target);
  assert.deepEqual(await collect(socket), { 1: "still here" });
  await closed.promise;
});

Deno.test("ChannelSocket reads the connection only as fast as its output is taken", async () => {
  const sent = Promise.withResolvers<number>();
  await using s = serve((ws) => {
    const mib = new Uint8Array(1 << 20);
    for (let i = 0; i < 32; i++) ws.send(msg(1, mib));
    setTimeout(() => sent.resolve(ws.bufferedAmount), 300);
  });
  const socket = await ChannelSocket.open(s.target);
  const reader = socket.output.getReader();
  await reader.read();
  // Read once only: the rest waits at the server (a few MiB fit in the kernel's buffers).
  assert.ok(await sent.promise > 16 << 20, "the client did not hold the server back");
  reader.releaseLock();
  socket.close();
  await socket.closed;
});

Deno.test("refusal() says why the API server refused the upgrade", async () => {
  const status = { kind: "Status", message: 'pods "web" is forbidden: User "u" cannot create' };
  await using s = serve(() => {}, {
    refuse: new Response(JSON.stringify(status), { status: 403 }),
  });
  const e = await ChannelSocket.open(s.target).catch((e) => e);
  assert.equal(refusal(e), `forbidden (${status.message})`);
  assert.match(refusal(new Error("connection refused")), /connection refused/);
});

Deno.test("parseStatus() reads the exit code of a NonZeroExitCode status", () => {
  const status = te.encode(JSON.stringify({
    status: "Failure",
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: "3" }] },
  }));
  assert.equal(parseStatus(status).exitCode, 3);
  assert.equal(parseStatus(te.encode("oops")).status, "Failure");
});

Deno.test("frame() masks the payload with the key it carries", () => {
  for (const n of [0, 3, 125, 126, 65535, 65536]) {
    const data = Uint8Array.from({ length: n }, (_, i) => i);
    const f = frame(2, data);
    const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
    assert.equal(f[0], 0x82);
    assert.equal(f[1] & 0x80, 0x80);
    const key = f.subarray(head, head + 4);
    const body = f.subarray(head + 4).map((b, i) => b ^ key[i & 3]);
    assert.deepEqual(body, data);
  }
});

Deno.test("ChannelSocket goes through an HTTP proxy with CONNECT", async () => {
  await using s = serve((ws) => {
    ws.send(msg(1, "through"));
    ws.close();
  });
  // A CONNECT proxy on loopback: reads the request head, connects, then copies both ways.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const asked: string[] = [];
  (async () => {
    for await (const client of listener) {
      const buf = new Uint8Array(4096);
      const n = (await client.read(buf)) ?? 0;
      const head = new TextDecoder().decode(buf.subarray(0, n));
      asked.push(head.split("\r\n")[0]);
      const [host, port] = head.split(" ")[1].split(":");
      const up = await Deno.connect({ hostname: host, port: Number(port) });
      await client.write(te.encode("HTTP/1.1 200 Connection established\r\n\r\n"));
      up.readable.pipeTo(client.writable).catch(() => {});
      client.readable.pipeTo(up.writable).catch(() => {});
    }
  })().catch(() => {});
  const env = { HTTP_PROXY: `http://127.0.0.1:${listener.addr.port}`, NO_PROXY: "" };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, Deno.env.get(k)]));
  Object.entries(env).forEach(([k, v]) => Deno.env.set(k, v));
  try {
    const socket = await ChannelSocket.open(s.target);
    assert.deepEqual(await collect(socket), { 1: "through" });
    assert.equal(asked[0], `CONNECT 127.0.0.1:${new URL(s.target.url).port} HTTP/1.1`);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    }
    listener.close();
  }
});
