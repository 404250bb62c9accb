/**
 * The Kubernetes section of `deno task bench`: `dbg k8s -q POD -- true` next to `kubectl debug
 * POD --target api --attach -- true` with the same image, on the private cluster of the tests
 * (tests/helpers/cluster.ts). Both add an ephemeral container, wait until it runs, attach, and
 * return when it ends; so the time from start to the end of `true` is compared.
 *
 * @module
 */

import type { PrivateCluster } from "../tests/helpers/cluster.ts";
import { cleanEnv } from "../tests/helpers/dockerd.ts";
import {
  type Cmd,
  type DenoCommands,
  measure,
  measureCost,
  stats,
  streamCommand,
  streamRows,
  summary,
  timeOnce,
  WARMUPS,
} from "./_bench_measure.ts";

/** The debugger image, as the kubelet's containerd names it (loaded by the cluster helper). */
const IMAGE = "docker.io/library/busybox:musl";

/** How many ended dbg containers the "busy" pod holds before it is measured. */
const ENDED = 10;

const target = (name: string) => ({
  metadata: { name },
  spec: {
    containers: [{
      name: "api",
      image: "docker.io/dbg-test/target:latest",
      imagePullPolicy: "Never",
    }],
  },
});

/**
 * Measures dbg next to kubectl debug on fresh pods (a new pod for every command) and on a pod
 * that already holds {@link ENDED} ended dbg containers; then how long dbg takes from its start
 * to the ephemeral container's PATCH (its --debug line once the API server answered), and a
 * stream (see measure() and measureCost()).
 */
export async function benchK8s(
  c: PrivateCluster,
  runs: number,
  deno: DenoCommands,
): Promise<void> {
  const env = cleanEnv({ KUBECONFIG: c.kubeconfig.admin, NO_COLOR: "1" });
  const dbg = (pod: string, cmd: string[]) => [
    ...deno.dbg,
    ...["k8s", "-q", "--image", IMAGE, `${pod}/api`, "--", ...cmd],
  ];
  const kubectl = (pod: string, cmd: string[]) => [
    c.kubectlPath,
    ...["debug", pod, "--target", "api", "--image", IMAGE, "--profile", "general"],
    ...["--image-pull-policy", "IfNotPresent", "--attach", "--quiet", "--", ...cmd],
  ];
  const N: Cmd = { label: "deno no-op", argv: deno.noop, env };
  const V: Cmd = { label: "kubectl version", argv: [c.kubectlPath, "version"], env };
  const ver = JSON.parse((await c.kubectl(["version", "-o", "json"])).stdout);
  console.log(
    `kubectl / server: ${ver.clientVersion?.gitVersion} / ${ver.serverVersion?.gitVersion}`,
  );

  // Fresh pods: made before the clock starts, one per command and round. (More rounds than
  // elsewhere: the phase of the kubelet's relist spreads each side's times over a second, and
  // medians of 16 rounds still moved the ratio between 0.77 and 1.30 from run to run.)
  const rounds = Math.min(runs * 3, 30) + WARMUPS;
  console.log(`bench: starting ${2 * rounds} fresh target pods`);
  for (let i = 0; i < rounds; i++) {
    await Promise.all([c.applyPod(target(`fresh-a${i}`)), c.applyPod(target(`fresh-b${i}`))]);
  }
  const FA: Cmd = { label: "A dbg (fresh pod)", argv: dbg("fresh-a0", ["true"]), env };
  const FB: Cmd = {
    label: "B kubectl debug (fresh pod)",
    argv: kubectl("fresh-b0", ["true"]),
    env,
  };
  console.log(`A: ${FA.argv.join(" ")}\nB: ${FB.argv.join(" ")}`);
  const used = { a: 0, b: 0 };
  // The kubelet reports a container's state at its relist, once a second. Rounds that take about
  // a whole number of seconds would meet it at the same phase every time, in favour of one side:
  // an untimed pause of up to a second before each command spreads the phases out.
  const fresh = async (cmd: Cmd): Promise<Cmd> => {
    await new Promise((r) => setTimeout(r, Math.random() * 1000));
    return cmd === FA
      ? { ...FA, argv: dbg(`fresh-a${used.a++}`, ["true"]) }
      : cmd === FB
      ? { ...FB, argv: kubectl(`fresh-b${used.b++}`, ["true"]) }
      : cmd;
  };
  let m = await measure({ A: FA, B: FB, N, V }, rounds - WARMUPS, performance.now(), fresh);
  summary.push({
    work: "k8s -- true vs kubectl debug, fresh pod",
    dbg: m(FA),
    peer: m(FB),
    unit: "ms",
    goal: 1,
  });

  console.log(`\nbench: starting pod busy and ending ${ENDED} dbg sessions in it`);
  await c.applyPod(target("busy"));
  for (let i = 0; i < ENDED; i++) {
    await timeOnce({ label: "dbg", argv: dbg("busy", ["true"]), env });
  }
  const A: Cmd = { label: `A dbg (${ENDED}+ ended)`, argv: dbg("busy", ["true"]), env };
  const B: Cmd = {
    label: `B kubectl debug (${ENDED}+ ended)`,
    argv: kubectl("busy", ["true"]),
    env,
  };
  m = await measure({ A, B, N, V }, runs, performance.now());
  summary.push({
    work: `k8s -- true vs kubectl debug, ${ENDED}+ ended`,
    dbg: m(A),
    peer: m(B),
    unit: "ms",
    goal: 1,
  });

  const patched: number[] = [];
  for (let i = 0; i < 5; i++) {
    const [program, ...args] = dbg("busy", ["true"]);
    args.splice(args.indexOf("-q"), 0, "--debug");
    const out = await new Deno.Command(program, { args, env, clearEnv: true, stderr: "piped" })
      .output();
    const at = /\+(\d+)ms: added ephemeral container/.exec(new TextDecoder().decode(out.stderr));
    if (at) patched.push(Number(at[1]));
  }
  const patch = stats(patched).median;
  console.log(`\nstart to PATCH answered: ${patched.join(", ")} ms (median ${patch})`);
  summary.push({ work: "k8s start to PATCH answered", dbg: patch, unit: "ms", max: 150 });

  const stream = streamCommand();
  const SA: Cmd = { label: "A dbg", argv: dbg("busy", stream), env };
  const SB: Cmd = { label: "B kubectl debug", argv: kubectl("busy", stream), env };
  const cost = await measureCost([SA, SB]);
  streamRows("k8s", cost.get(SA)!, cost.get(SB)!, "kubectl debug");
}
