/**
 * TCP_NODELAY for a connection that `Deno.connectTls` made, which dbg needs for a client
 * certificate (dial.ts says why, and what Nagle's algorithm costs there). Deno gives no file
 * descriptor, so the socket is found among the process's by its two addresses (getsockname,
 * getpeername), through glibc's libc; where that does not load (musl, macOS), nothing changes.
 * Linux sends what the algorithm holds back as soon as the option is set, so setting it while
 * the handshake runs still helps.
 *
 * @module
 */

import { glibc } from "../_libc.ts";

const SYMBOLS = {
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
} as const;
let libc: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | null | undefined;

// (Linux's values.)
const AF_INET = 2, AF_INET6 = 10, IPPROTO_TCP = 6, TCP_NODELAY = 1;

/** Sets TCP_NODELAY on the connection's socket; whether it could. */
export function setNoDelay(conn: Deno.Conn<Deno.NetAddr>): boolean {
  const fd = socketOf(conn);
  return fd !== undefined && libc!.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, ONE, 4) === 0;
}

const ONE = new Int32Array([1]);

/** The file descriptor of the connection's socket, where libc and /proc tell it. */
export function socketOf(conn: Deno.Conn<Deno.NetAddr>): number | undefined {
  if (libc === undefined) libc = glibc(SYMBOLS);
  if (!libc) return undefined;
  const c = libc;
  const addr = new Uint8Array(128);
  const len = new Uint32Array(1);
  /** The TCP port of the address `get` gives for `fd`, if it has one. */
  const port = (get: typeof c.getsockname, fd: number) => {
    len[0] = addr.length;
    if (get(fd, addr, len) !== 0) return undefined;
    const family = addr[0] | (addr[1] << 8);
    return family === AF_INET || family === AF_INET6 ? (addr[2] << 8) | addr[3] : undefined;
  };
  try {
    for (const e of Deno.readDirSync("/proc/self/fd")) {
      const fd = Number(e.name);
      if (port(c.getsockname, fd) !== conn.localAddr.port) continue;
      if (port(c.getpeername, fd) === conn.remoteAddr.port) return fd;
    }
  } catch { /* no /proc */ }
  return undefined;
}
