import assert from "node:assert/strict";
import { parseArgs } from "./cli.ts";
import { DbgError } from "./errors.ts";

Deno.test("parseArgs() splits target and command at --", () => {
  const r = parseArgs(["docker", "app", "--image", "nix:curl", "--", "ls", "-la", "/"]);
  assert.equal(r.kind, "debug");
  if (r.kind !== "debug") return;
  assert.equal(r.target, "app");
  assert.deepEqual(r.command, ["ls", "-la", "/"]);
  assert.equal(r.raw.image, "nix:curl");
});

Deno.test("parseArgs() collects repeated -e and reads -T", () => {
  const r = parseArgs(["docker", "-e", "A=1", "--env", "B=2", "-T", "app"]);
  if (r.kind !== "debug") throw new Error(r.kind);
  assert.deepEqual(r.raw.env, ["A=1", "B=2"]);
  assert.equal(r.raw.tty, false);
  assert.equal(r.raw.pull, undefined); // defaults are applied by validateOptions()
});

Deno.test("parseArgs() takes --debug before the runtime too", () => {
  const r = parseArgs(["--debug", "docker", "app"]);
  if (r.kind !== "debug") throw new Error(r.kind);
  assert.equal(r.raw.debug, true);
});

Deno.test("parseArgs() answers help and version with text", () => {
  const help = parseArgs(["--help"]);
  assert.equal(help.kind, "print");
  if (help.kind === "print") assert.match(help.text, /Usage: dbg <runtime>/);
  const sub = parseArgs(["docker", "--help"]);
  if (sub.kind === "print") assert.match(sub.text, /--image REF /);
  if (sub.kind === "print") assert.match(sub.text, /-H, --host URL /);
  assert.equal(parseArgs([]).kind, "print");
  const v = parseArgs(["--version"]);
  if (v.kind === "print") assert.match(v.text, /^\d+\.\d+\.\d+/);
});

Deno.test("parseArgs() turns bad flags into one-line usage errors (exit 125)", () => {
  const cases: Array<[string[], RegExp]> = [
    [["docker", "app", "--bogus"], /^Unknown option '--bogus'/],
    [["docker"], /^Missing the target container/],
    [["docker", "app", "--image"], /^Option '--image <ref>' needs a value/],
    [["docker", "app", "--keep=1"], /^Option '--keep' takes no value/],
    [["images", "extra"], /^Unexpected argument 'extra'/],
    [["-q", "docker", "app"], /^'docker' is a runtime: it comes before the options/],
    [["--bogus", "app"], /^Unknown option '--bogus'/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(() => parseArgs(argv), (e: DbgError) => {
      assert.ok(e instanceof DbgError);
      assert.match(e.message, re);
      assert.equal(e.exitCode, 125);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  }
});

Deno.test("parseArgs(): a word that is no command is a target to look up everywhere", () => {
  for (const argv of [["app", "ls"], ["-q", "app", "ls"], ["--debug", "app", "ls"]]) {
    const r = parseArgs(argv);
    if (r.kind !== "debug") throw new Error(r.kind);
    assert.deepEqual([r.runtime, r.target, r.command], ["", "app", ["ls"]]);
  }
});

Deno.test("parseArgs(): dbg attach and dbg sessions, and their Kubernetes forms", () => {
  assert.deepEqual(parseArgs(["attach", "dbg-1"]), { kind: "attach", name: "dbg-1", raw: {} });
  assert.deepEqual(parseArgs(["attach", "-T", "podman", "dbg-1"]), {
    kind: "attach",
    runtime: "podman",
    name: "dbg-1",
    raw: { tty: false },
  });
  const k8s = parseArgs(["attach", "k8s", "-n", "shop", "web", "dbg-1"]);
  if (k8s.kind !== "debug") throw new Error(k8s.kind);
  assert.deepEqual([k8s.runtime, k8s.target, k8s.raw.namespace, k8s.raw.attach], [
    "k8s",
    "web",
    "shop",
    "dbg-1",
  ]);
  const listed = parseArgs(["sessions", "k8s", "web"]);
  if (listed.kind !== "debug") throw new Error(listed.kind);
  assert.deepEqual([listed.target, listed.raw.sessions], ["web", true]);
  assert.throws(() => parseArgs(["attach", "k8s", "dbg-1"]), /needs the pod and the session/);
  assert.throws(() => parseArgs(["attach", "a", "b"]), /takes one session name/);
});

Deno.test("parseArgs() ends options at the command, like docker run", () => {
  const r = parseArgs(["docker", "-it", "--env=A=1", "app", "ls", "-la", "--image", "x"]);
  if (r.kind !== "debug") throw new Error(r.kind);
  assert.deepEqual(r.command, ["ls", "-la", "--image", "x"]);
  assert.equal(r.raw.image, undefined);
  assert.equal(r.raw.interactive, true);
  assert.equal(r.raw.tty, true);
  assert.deepEqual(r.raw.env, ["A=1"]);
  const opts = parseArgs(["docker", "app", "-q", "--pull", "never", "--", "-x"]);
  if (opts.kind !== "debug") throw new Error(opts.kind);
  assert.deepEqual(opts.command, ["-x"]);
  assert.equal(opts.raw.pull, "never");
  assert.equal(opts.raw.quiet, true);
});

Deno.test("parseArgs() takes a short option's value from the rest of its cluster", () => {
  const r = parseArgs(["docker", "-iuapp", "-eA=1", "-w/tmp", "-q", "app"]);
  if (r.kind !== "debug") throw new Error(r.kind);
  assert.equal(r.raw.interactive, true);
  assert.equal(r.raw.user, "app");
  assert.deepEqual(r.raw.env, ["A=1"]);
  assert.equal(r.raw.workdir, "/tmp");
  assert.throws(() => parseArgs(["docker", "-iz", "app"]), /Unknown option '-z'/);
});

Deno.test("parseArgs() reads the words without a target: images, sessions, gc", () => {
  assert.deepEqual(parseArgs(["images", "--json"]), {
    kind: "tool",
    name: "images",
    raw: { json: true },
  });
  assert.deepEqual(parseArgs(["gc", "--dry-run"]), {
    kind: "tool",
    name: "gc",
    raw: { dryRun: true },
  });
});
