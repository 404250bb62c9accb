import assert from "node:assert/strict";
import { resolveImage } from "../images/catalog.ts";
import type { TargetFacts } from "./adapter.ts";
import { ENTRY_SCRIPT } from "./entry.ts";
import { validateOptions } from "./options.ts";
import { capsFacts, chooseMode, makePlan, planForDisplay, runsAsRoot, shellJoin } from "./plan.ts";

const facts: TargetFacts = {
  id: "abc123",
  name: "app",
  running: true,
  state: "running",
  pid: 1,
  pidNamespace: "private",
  user: "",
  readOnlyRootfs: false,
  privileged: false,
  cwd: "/app",
  ipc: "private",
};
const opts = (raw = {}, command: string[] = []) =>
  validateOptions({ runtime: "docker", target: "app", command }, raw, {
    io: { stdinIsTerminal: false },
    supports: { keep: true, privileged: true, name: true, images: true, copy: true, attach: true },
  });

Deno.test("chooseMode() picks chroot for static tools and plain for dynamic ones", () => {
  assert.equal(chooseMode(opts(), facts, resolveImage(undefined)).mode, "chroot");
  assert.equal(chooseMode(opts(), facts, resolveImage("netshoot")).mode, "plain");
  const custom = chooseMode(opts(), facts, resolveImage("alpine"));
  assert.equal(custom.mode, "probe");
  assert.match(custom.reason, /not in the catalog/);
});

Deno.test("chooseMode() handles nix images by the target's rootfs and --privileged", () => {
  const nix = resolveImage("nix:curl");
  assert.equal(chooseMode(opts(), facts, nix).mode, "chroot");
  const ro = { ...facts, readOnlyRootfs: true };
  assert.equal(chooseMode(opts(), ro, nix).mode, "plain");
  assert.equal(chooseMode(opts({ privileged: true }), ro, nix).mode, "mount");
});

Deno.test("chooseMode() lets an explicit --mode win", () => {
  const c = chooseMode(opts({ mode: "plain" }), facts, resolveImage(undefined));
  assert.deepEqual(c, { mode: "plain", reason: "--mode" });
});

Deno.test("makePlan() maps the profiles to capabilities on every runtime", () => {
  const caps = (raw: Record<string, unknown>, f = facts) =>
    makePlan(opts(raw), f, resolveImage(undefined)).sidecar;
  assert.deepEqual(caps({}).capAdd, ["SYS_PTRACE"]);
  assert.equal(caps({}).profile, "general");
  assert.deepEqual(caps({ profile: "baseline" }).capAdd, []);
  assert.deepEqual(caps({ profile: "netadmin" }).capAdd, ["SYS_PTRACE", "NET_ADMIN", "NET_RAW"]);
  const sys = caps({ profile: "sysadmin" });
  assert.equal(sys.privileged, true);
  assert.deepEqual(sys.capAdd, []);
  const restricted = caps({ profile: "restricted" });
  assert.deepEqual(restricted.capDrop, ["ALL"]);
  assert.equal(restricted.noNewPrivileges, true);
  assert.equal(restricted.user, "65534");
  assert.deepEqual(caps({ privileged: true }).capAdd, []);
});

Deno.test("makePlan() without SYS_PTRACE runs plain as a target's known ids, or lets the entry script fall back", () => {
  const known = makePlan(
    opts({ profile: "baseline" }),
    { ...facts, user: "1000:1000" },
    resolveImage(undefined),
  );
  assert.equal(known.mode, "plain");
  assert.equal(known.sidecar.user, "1000:1000");
  assert.match(
    known.banner,
    /baseline adds no SYS_PTRACE, so dbg runs as the target's ids 1000:1000/,
  );
  const unknown = makePlan(opts({ profile: "baseline" }), facts, resolveImage(undefined));
  assert.equal(unknown.mode, "chroot");
  assert.equal(unknown.banner, "", "the entry script prints it");
  assert.ok(unknown.sidecar.env.includes("DBG_FALLBACK=1"));
  assert.ok(unknown.sidecar.env.some((e) => /^DBG_BANNER=dbg: chroot mode/.test(e)));
  const asked = makePlan(
    opts({ profile: "baseline", mode: "chroot" }),
    { ...facts, user: "1000:1000" },
    resolveImage(undefined),
  );
  assert.equal(asked.mode, "chroot", "an explicit mode is kept");
  assert.ok(asked.sidecar.env.includes("DBG_FALLBACK=0"));
  const general = makePlan(opts(), { ...facts, user: "1000:1000" }, resolveImage(undefined));
  assert.ok(general.sidecar.env.includes("DBG_FALLBACK=0"));
  assert.match(general.banner, /^dbg: chroot mode/);
});

Deno.test("makePlan() leaves images outside the catalog to the entry script's probe", () => {
  const plan = makePlan(opts({ image: "my/tools:1" }), facts, resolveImage("my/tools:1"));
  assert.equal(plan.mode, "probe");
  assert.equal(plan.banner, "");
  assert.ok(
    plan.sidecar.env.some((e) =>
      e.startsWith("DBG_BANNER=dbg: chroot mode (my/tools:1 is not in the catalog, and its shell")
    ),
  );
});

Deno.test("validateOptions() refuses --privileged with a profile that forbids it", () => {
  assert.throws(() => opts({ privileged: true, profile: "restricted" }), /contradicts/);
});

Deno.test("makePlan() keeps the sidecar root in chroot mode and uses -u as is in plain", () => {
  assert.equal(makePlan(opts({ user: "app" }), facts, resolveImage(undefined)).sidecar.user, "0");
  const plain = makePlan(opts({ user: "1000", mode: "plain" }), facts, resolveImage(undefined));
  assert.equal(plain.sidecar.user, "1000");
  assert.ok(plain.sidecar.env.includes("DBG_USER="));
});

Deno.test("makePlan() passes argv untouched after --, and the -e values in the environment", () => {
  const o = opts({ env: ["A=1 2"] }, ["printf", "%s", "a b", "$X"]);
  const plan = makePlan(o, facts, resolveImage(undefined), "deadbeef");
  assert.ok(plan.sidecar.env.includes(`DBG_ENTRY=${ENTRY_SCRIPT}`));
  assert.deepEqual(plan.sidecar.argv, [
    "/bin/sh",
    "-c",
    'eval "$DBG_ENTRY"',
    "dbg-helper",
    "--",
    "printf",
    "%s",
    "a b",
    "$X",
  ]);
  assert.ok(plan.sidecar.env.includes("DBG_NENV=1"));
  assert.ok(plan.sidecar.env.includes("DBG_E1=A=1 2"));
  assert.equal(plan.sidecar.name, "dbg-deadbeef");
  assert.deepEqual(plan.sidecar.labels, { "dbg.session": "deadbeef", "dbg.target": "abc123" });
  assert.ok(plan.sidecar.env.includes("DBG_WORKDIR=/app"));
  assert.ok(plan.sidecar.env.includes("DBG_PID=1"));
});

Deno.test("makePlan() passes the local TERM on with a TTY only", () => {
  const o = (tty: boolean) =>
    validateOptions({ runtime: "docker", target: "app", command: [] }, {}, {
      io: { stdinIsTerminal: tty, term: "tmux-256color" },
      supports: {
        keep: true,
        privileged: true,
        name: true,
        images: true,
        copy: true,
        attach: true,
      },
    });
  assert.ok(
    makePlan(o(true), facts, resolveImage(undefined)).sidecar.env.includes("TERM=tmux-256color"),
  );
  assert.ok(
    !makePlan(o(false), facts, resolveImage(undefined)).sidecar.env.some((e) =>
      e.startsWith("TERM=")
    ),
  );
});

Deno.test("makePlan() joins IPC only when the target's IPC is shareable or host", () => {
  const join = (ipc: TargetFacts["ipc"]) =>
    makePlan(opts(), { ...facts, ipc }, resolveImage(undefined)).sidecar.join;
  assert.equal(join("private").ipc, false);
  assert.equal(join("shareable").ipc, true);
  assert.deepEqual(join("host"), { pid: true, net: true, ipc: true, ipcHost: true });
});

Deno.test("makePlan() banner names the mode and why", () => {
  const plan = makePlan(opts(), facts, resolveImage(undefined));
  assert.equal(
    plan.banner,
    "dbg: chroot mode (busybox:musl has static tools): / is app's",
  );
});

Deno.test("planForDisplay() summarises the entry script", () => {
  const shown = planForDisplay(makePlan(opts(), facts, resolveImage(undefined))) as {
    sidecar: { env: string[] };
  };
  assert.ok(shown.sidecar.env.includes("DBG_ENTRY=<dbg entry script, lib/entry.sh>"));
});

Deno.test("runsAsRoot() reads docker user specs", () => {
  for (const u of ["", "0", "root", "0:0", "root:wheel"]) assert.equal(runsAsRoot(u), true, u);
  for (const u of ["1000", "app", "1000:0"]) assert.equal(runsAsRoot(u), false, u);
});

Deno.test("makePlan() debugs a target that is not running through a copy, named after the sidecar", () => {
  const stopped: TargetFacts = {
    ...facts,
    running: false,
    state: "exited",
    readOnlyRootfs: true,
    copy: {
      ended: "exited with code 3",
      entrypoint: ["/app/server", "--port", "80", "it's"],
      volumes: true,
    },
  };
  const plan = makePlan(opts({ name: "dbg-x" }), stopped, resolveImage(undefined), "0123abcd");
  assert.deepEqual(plan.target, { id: "dbg-x-copy", name: "app", pid: 1 });
  assert.equal(plan.copy?.name, "dbg-x-copy");
  assert.deepEqual(plan.copy?.source, { kind: "container", id: "abc123" });
  assert.equal(plan.copy?.readOnly, true);
  assert.equal(
    plan.copy?.banner,
    "dbg: app exited with code 3: this session runs in a throwaway copy; changes are discarded, except in its volumes",
  );
  // The entrypoint reaches the session as a -e value, quoted for sh -c.
  assert.ok(
    plan.sidecar.env.includes(`DBG_E1=DBG_ENTRYPOINT=/app/server --port 80 'it'\\''s'`),
    plan.sidecar.env.join(" "),
  );
  // The copy's PID 1 is the one to find: no search by the original's id.
  assert.ok(plan.sidecar.env.includes("DBG_TARGET_ID="));
  assert.equal(makePlan(opts(), facts, resolveImage(undefined)).copy, undefined);
  assert.equal(plan.copy?.network, "none");
  const host = makePlan(opts({ network: "host" }), stopped, resolveImage(undefined));
  assert.equal(host.copy?.network, "host");
  // A running target's network is the one the sidecar joins.
  assert.throws(
    () => makePlan(opts({ network: "host" }), facts, resolveImage(undefined)),
    /--network is for a copy/,
  );
});

Deno.test("shellJoin() quotes only the words that need it", () => {
  assert.equal(shellJoin(["sh", "-c", "echo $HOME", "", "a'b"]), `sh -c 'echo $HOME' '' 'a'\\''b'`);
});

Deno.test("makePlan() notes when the target's processes could open the session's", () => {
  const note = (raw: Record<string, unknown>, f: Partial<TargetFacts> = {}) =>
    makePlan(opts(raw), { ...facts, ...f }, resolveImage(undefined)).exposure;
  // general holds SYS_PTRACE, which the target lacks: the kernel stops it.
  assert.equal(note({}), "");
  assert.equal(
    note({ profile: "netadmin" }, { caps: { add: ["NET_ADMIN", "NET_RAW"], drop: [] } }),
    "",
  );
  assert.equal(note({ profile: "baseline" }, { caps: { add: [], drop: ["NET_RAW"] } }), "");
  assert.match(
    note({ profile: "baseline" }),
    /no capability app lacks.*--profile general adds one$/,
  );
  assert.match(
    note({}, { caps: { add: ["SYS_PTRACE"], drop: [] } }),
    /^dbg: note: app holds SYS_PTRACE, so app's processes can open this session's through \/proc/,
  );
  assert.match(note({}, { privileged: true }), /app holds SYS_PTRACE/);
  assert.match(
    note({ profile: "restricted" }, { user: "1000:1000" }),
    /runs as a user without capabilities/,
  );
  assert.equal(
    note({ profile: "baseline" }, {
      copy: { ended: "is an image", entrypoint: [], volumes: false },
    }),
    "",
  );
});

Deno.test("capsFacts() names capabilities as the plan compares them", () => {
  assert.deepEqual(capsFacts(["cap_sys_ptrace", "NET_ADMIN"], ["ALL"]), {
    add: ["SYS_PTRACE", "NET_ADMIN"],
    drop: ["ALL"],
  });
});
