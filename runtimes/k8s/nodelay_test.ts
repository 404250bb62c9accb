import * as assert from "node:assert/strict";
import { setNoDelay, socketOf } from "./nodelay.ts";

/** TCP_NODELAY of a socket, read back through libc. */
function noDelayOf(fd: number): number {
  const lib = Deno.dlopen("libc.so.6", {
    getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  });
  try {
    const value = new Int32Array(1);
    const len = new Uint32Array([4]);
    assert.equal(lib.symbols.getsockopt(fd, 6, 1, value, len), 0);
    return value[0];
  } finally {
    lib.close();
  }
}

Deno.test("setNoDelay finds a connection's socket by its addresses and sets TCP_NODELAY", async () => {
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  // Two connections, so that the one asked for has to be told from the other.
  const other = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  const accepted = [await server.accept(), await server.accept()];
  try {
    const fd = socketOf(conn);
    assert.notEqual(fd, undefined);
    assert.equal(noDelayOf(fd!), 0); // Deno's sockets start with Nagle's algorithm
    assert.equal(setNoDelay(conn), true);
    assert.notEqual(noDelayOf(fd!), 0);
    assert.equal(noDelayOf(socketOf(other)!), 0);
  } finally {
    for (const c of [other, conn, ...accepted]) c.close();
    server.close();
  }
});
