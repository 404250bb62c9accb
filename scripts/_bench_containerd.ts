/**
 * The containerd section of `deno task bench`: `dbg containerd -n default -q app -- true` next to
 * the closest raw command, `ctr run --rm` of busybox:musl joining the target task's pid, network,
 * ipc and uts namespaces by path (`--with-ns`), on a private containerd
 * (tests/helpers/containerd.ts). ctr is spawned directly with the argv and environment the
 * helper's `c.ctr()` would use (its private runc root, FIFO dir and cgroup), so nothing but ctr
 * itself is timed.
 *
 * @module
 */

import { sh } from "../tests/helpers/dockerd.ts";
import {
  CTR,
  CTR_BUSYBOX_IMAGE,
  loadImagesInto,
  type PrivateContainerd,
  runCtrTarget,
} from "../tests/helpers/containerd.ts";
import {
  type Cmd,
  type DenoCommands,
  measure,
  measureCost,
  streamCommand,
  streamRows,
  summary,
} from "./_bench_measure.ts";

const NAMESPACE = "default";
const TARGET = "app";
/** `--with-ns` type and the matching `/proc/<pid>/ns/` entry: what `dbg containerd` joins. */
const JOINED: Array<[string, string]> = [
  ["pid", "pid"],
  ["network", "net"],
  ["ipc", "ipc"],
  ["uts", "uts"],
];

/** Client and daemon versions from `ctr version` (its two `Version:` lines). */
async function versions(c: PrivateContainerd): Promise<string> {
  const out = (await c.ctr(["version"])).stdout;
  const vs = [...out.matchAll(/^\s*Version:\s*(\S+)/gm)].map((m) => m[1]);
  return vs.join(" / ") || "?";
}

/**
 * Runs the raw command once with a probe instead of `true`: it must see the target's rootfs
 * marker through /proc/1/root (so it is in the target's pid namespace) and have the same
 * namespace links as the target for every joined type.
 */
async function verifyJoins(
  ctrRun: (cmd: string[]) => { argv: string[]; env: Record<string, string> },
  pid: number,
): Promise<void> {
  const links = JOINED.map(([, f]) => `/proc/self/ns/${f}`).join(" ");
  const script = `ls /proc/1/root/marker.txt && for f in ${links}; do readlink $f; done`;
  const probe = ctrRun(["sh", "-c", script]);
  const r = await sh(probe.argv, { env: probe.env, check: false });
  const lines = r.stdout.trim().split("\n");
  const want = ["/proc/1/root/marker.txt"];
  for (const [, f] of JOINED) want.push(await Deno.readLink(`/proc/${pid}/ns/${f}`));
  if (r.code !== 0 || lines.join("\n") !== want.join("\n")) {
    throw new Error(
      `raw ctr run does not join the target's namespaces (exit ${r.code}):\n` +
        `  got:  ${lines.join(" ")}\n  want: ${want.join(" ")}\n${r.stderr.trim()}`,
    );
  }
  console.log(`B joins the target's namespaces: ${want.slice(1).join(" ")} (checked once)`);
}

/**
 * Loads the test images into `default`, starts the target `app` with ctr, checks that the raw
 * command joins its namespaces, then measures (see measure()).
 */
export async function benchContainerd(
  c: PrivateContainerd,
  runs: number,
  deno: DenoCommands,
): Promise<void> {
  const t0 = performance.now();
  console.log("bench: loading the test images and starting the target app");
  await loadImagesInto(c, NAMESPACE);
  const { pid } = await runCtrTarget(c, { namespace: NAMESPACE, id: TARGET });
  const withNs = JOINED.flatMap(([t, f]) => ["--with-ns", `${t}:/proc/${pid}/ns/${f}`]);
  let serial = 0;
  const ctrRun = (cmd: string[]) =>
    c.ctrCommand(["run", "--rm", ...withNs, CTR_BUSYBOX_IMAGE, `bench-${++serial}`, ...cmd], {
      namespace: NAMESPACE,
    });
  await verifyJoins(ctrRun, pid);

  const first = ctrRun(["true"]);
  const env = { ...first.env, NO_COLOR: "1" };
  const A: Cmd = {
    label: "A dbg",
    argv: [
      ...deno.dbg,
      ...["containerd", "--address", c.address, "-n", NAMESPACE, "-q", TARGET, "--", "true"],
    ],
    env,
  };
  const B: Cmd = { label: "B ctr run", argv: first.argv, env };
  const N: Cmd = { label: "deno no-op", argv: deno.noop, env };
  const V: Cmd = { label: "ctr version", argv: [CTR, "--address", c.address, "version"], env };
  console.log(
    `snapshotter: ${c.snapshotter}; containerd client / daemon: ${await versions(c)}`,
  );
  console.log(`A: ${A.argv.join(" ")}\nB: ${B.argv.join(" ")}`);
  console.log("   (B gets a fresh container id bench-<n> and cgroup run-<n> every time)");
  // Every B needs its own container id (and cgroup): the printed one is used first.
  let firstUsed = false;
  const fresh = (cmd: Cmd): Cmd => {
    if (cmd !== B) return cmd;
    if (!firstUsed) {
      firstUsed = true;
      return cmd;
    }
    return { ...B, argv: ctrRun(["true"]).argv };
  };
  const m = await measure({ A, B, N, V }, runs, t0, fresh);
  summary.push({
    work: "containerd -- true vs ctr run",
    dbg: m(A),
    peer: m(B),
    unit: "ms",
    goal: 1.5,
  });
  const stream = streamCommand();
  const SA = { ...A, argv: [...A.argv.slice(0, -1), ...stream] };
  const SB = { ...B, argv: ctrRun(stream).argv };
  const cost = await measureCost(
    [SA, SB],
    (cmd) => cmd === SB ? { ...SB, argv: ctrRun(stream).argv } : cmd,
  );
  streamRows("containerd", cost.get(SA)!, cost.get(SB)!, "ctr run");
}
