import assert from "node:assert/strict";
import type { Attachment, OutputChunk, RuntimeAdapter, Sidecar } from "./adapter.ts";
import type { DebugPlan } from "./plan.ts";
import { DbgError, LeftBehind } from "./errors.ts";
import { runSession, type SessionIo } from "./session.ts";

/** A fake adapter with one function per method, recording the order of calls. */
function fakeAdapter(
  o: { exit: Promise<number>; output?: OutputChunk[]; removesItself?: boolean },
) {
  const calls: string[] = [];
  const written: Uint8Array[] = [];
  const exited = Promise.withResolvers<number>();
  o.exit.then(exited.resolve, exited.reject);
  const sidecar: Sidecar = {
    id: "fake",
    name: "dbg-fake",
    removesItself: o.removesItself ?? false,
    attach: () => {
      calls.push("attach");
      const att: Attachment = {
        output: new ReadableStream<OutputChunk>({
          async start(c) {
            for (const chunk of o.output ?? []) c.enqueue(chunk);
            await exited.promise.catch(() => {});
            c.close();
          },
        }),
        write: (d) => (written.push(d), Promise.resolve()),
        closeWrite: () => (calls.push("closeWrite"), Promise.resolve()),
        close: () => {},
      };
      return Promise.resolve(att);
    },
    beginWait: () => (calls.push("wait"), Promise.resolve({ exit: exited.promise })),
    start: () => (calls.push("start"), Promise.resolve()),
    resize: () => Promise.resolve(),
    signal: (s) => {
      calls.push(`signal ${s}`);
      if (s === "SIGTERM") exited.resolve(143);
      return Promise.resolve();
    },
    hangUp: () => {
      calls.push("hangUp");
      exited.resolve(129);
      return Promise.resolve();
    },
    remove: () => (calls.push("remove"), Promise.resolve()),
  };
  const adapter: RuntimeAdapter = {
    name: "fake",
    supports: { keep: true, privileged: true, name: true, images: true, copy: true, attach: true },
    listHint: "fake ps",
    connect: () => Promise.resolve(),
    inspectTarget: () => Promise.reject(new Error("unused")),
    ensureImage: () => Promise.resolve(),
    createSidecar: () => (calls.push("create"), Promise.resolve(sidecar)),
  };
  return { adapter, calls, written };
}

function plan(over: Partial<DebugPlan["sidecar"]> = {}, keep = false): DebugPlan {
  return {
    runtime: "fake",
    runId: "r1",
    target: { id: "t", name: "t", pid: 1 },
    image: { ref: "busybox:musl", alias: "busybox", static: true, nix: false },
    pull: "missing",
    mode: "chroot",
    modeReason: "test",
    sidecar: {
      name: "dbg-r1",
      labels: {},
      capAdd: [],
      capDrop: [],
      noNewPrivileges: false,
      privileged: false,
      profile: "general",
      join: { pid: true, net: true, ipc: false, ipcHost: false },
      tty: false,
      stdin: true,
      argv: [],
      env: [],
      ...over,
    },
    exposure: "",
    command: [],
    keep,
    banner: "",
  };
}

function io(input: string[] = []) {
  const out: string[] = [], err: string[] = [];
  const dec = new TextDecoder();
  const sink = (to: string[]) => ({
    write: (p: Uint8Array) => (to.push(dec.decode(p)), Promise.resolve(p.length)),
  });
  const enc = new TextEncoder();
  const sio: SessionIo = {
    stdin: {
      isTerminal: () => false,
      setRaw: () => {},
      readable: ReadableStream.from(input.map((s) => enc.encode(s))),
    },
    stdout: sink(out),
    stderr: sink(err),
    debug: () => {},
    banner: false,
  };
  return { sio, out, err };
}

Deno.test("runSession() attaches and waits before start, then removes the sidecar", async () => {
  const { adapter, calls } = fakeAdapter({ exit: Promise.resolve(42) });
  const { sio } = io();
  assert.equal(await runSession(adapter, plan(), sio), 42);
  assert.deepEqual(calls.filter((c) => c !== "closeWrite"), [
    "create",
    "attach",
    "wait",
    "start",
    "remove",
  ]);
});

Deno.test("runSession() keeps stdout and stderr apart and pipes stdin with EOF", async () => {
  const enc = new TextEncoder();
  const done = Promise.withResolvers<number>();
  const f = fakeAdapter({
    exit: done.promise,
    output: [{ stream: 1, data: enc.encode("out") }, { stream: 2, data: enc.encode("err") }],
  });
  const { sio, out, err } = io(["hello"]);
  setTimeout(() => done.resolve(0), 50);
  assert.equal(await runSession(f.adapter, plan(), sio), 0);
  assert.deepEqual(out, ["out"]);
  assert.deepEqual(err, ["err"]);
  assert.equal(new TextDecoder().decode(f.written[0]), "hello");
  assert.ok(f.calls.includes("closeWrite"));
});

Deno.test("runSession() leaves an exited sidecar to an engine that removes it itself", async () => {
  const { adapter, calls } = fakeAdapter({ exit: Promise.resolve(0), removesItself: true });
  assert.equal(await runSession(adapter, plan({ stdin: false }), io().sio), 0);
  assert.ok(!calls.includes("remove"));
});

Deno.test("runSession() keeps the sidecar with --keep", async () => {
  const { adapter, calls } = fakeAdapter({ exit: Promise.resolve(0) });
  assert.equal(await runSession(adapter, plan({}, true), io().sio), 0);
  assert.ok(!calls.includes("remove"));
});

Deno.test("runSession() on SIGTERM stops and removes the sidecar and returns 143", async () => {
  const { adapter, calls } = fakeAdapter({ exit: new Promise(() => {}) });
  setTimeout(() => Deno.kill(Deno.pid, "SIGTERM"), 100);
  const alive = setInterval(() => {}, 20); // a real session has sockets open meanwhile
  try {
    assert.equal(await runSession(adapter, plan({ stdin: false }), io().sio), 143);
  } finally {
    clearInterval(alive);
  }
  assert.deepEqual(calls.slice(-2), ["signal SIGTERM", "remove"]);
});

Deno.test("runSession() stops a TTY session with a hangup of the whole sidecar", async () => {
  const { adapter, calls } = fakeAdapter({ exit: new Promise(() => {}) });
  setTimeout(() => Deno.kill(Deno.pid, "SIGHUP"), 100);
  const alive = setInterval(() => {}, 20);
  try {
    const p = plan({ stdin: false, tty: true });
    assert.equal(await runSession(adapter, p, io().sio), 129);
  } finally {
    clearInterval(alive);
  }
  assert.deepEqual(calls.slice(-2), ["hangUp", "remove"]);
});

Deno.test("runSession() ends a TTY session whose terminal input is gone (129)", async () => {
  const { adapter, calls } = fakeAdapter({ exit: new Promise(() => {}) });
  const closed = new ReadableStream<Uint8Array>({
    pull: (c) => new Promise((r) => setTimeout(() => (c.error(new Error("EIO")), r()), 50)),
  });
  const { sio } = io();
  const alive = setInterval(() => {}, 20);
  try {
    const r = await runSession(adapter, plan({ tty: true }), {
      ...sio,
      stdin: { ...sio.stdin, readable: closed },
    });
    assert.equal(r, 129);
  } finally {
    clearInterval(alive);
  }
  assert.deepEqual(calls.slice(-2), ["hangUp", "remove"]);
});

Deno.test("runSession() removes the sidecar when the engine is lost mid-session", async () => {
  const { adapter, calls } = fakeAdapter({ exit: Promise.reject(new Error("lost")) });
  await assert.rejects(() => runSession(adapter, plan({ stdin: false }), io().sio), /lost/);
  assert.equal(calls.at(-1), "remove");
});

Deno.test("runSession() reports what an adapter left behind, in the adapter's words", async () => {
  const { adapter } = fakeAdapter({ exit: Promise.reject(new DbgError("attach refused")) });
  const sidecar = await adapter.createSidecar(plan());
  sidecar.remove = () =>
    Promise.reject(new LeftBehind("dbg-fake is still running", { hint: "reattach and exit" }));
  adapter.createSidecar = () => Promise.resolve(sidecar);
  await assert.rejects(
    () => runSession(adapter, plan({ stdin: false }), io().sio),
    (e: DbgError) => {
      assert.equal(e.message, "attach refused");
      assert.equal(e.hint, "dbg-fake is still running: reattach and exit");
      return true;
    },
  );
});
