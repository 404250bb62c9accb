/**
 * The Kubernetes section of `deno task bench`: `dbg k8s -q web -- true` next to `kubectl debug
 * web --target api --attach -- true` with the same image, on the private cluster of the tests
 * (tests/helpers/cluster.ts). Both add an ephemeral container, wait until it runs, attach, and
 * return when it ends; so the time from start to the end of `true` is compared.
 *
 * @module
 */

import type { PrivateCluster } from "../tests/helpers/cluster.ts";
import { cleanEnv } from "../tests/helpers/dockerd.ts";
import { type Cmd, type DenoCommands, measure } from "./_bench_measure.ts";

/** The debugger image, as the kubelet's containerd names it (loaded by the cluster helper). */
const IMAGE = "docker.io/library/busybox:musl";

/** Starts the target pod `web`, then measures (see measure()). */
export async function benchK8s(
  c: PrivateCluster,
  runs: number,
  deno: DenoCommands,
): Promise<void> {
  const t0 = performance.now();
  console.log("bench: starting the target pod web");
  await c.applyPod({
    metadata: { name: "web" },
    spec: {
      containers: [{
        name: "api",
        image: "docker.io/dbg-test/target:latest",
        imagePullPolicy: "Never",
      }],
    },
  });
  const env = cleanEnv({ KUBECONFIG: c.kubeconfig.admin, NO_COLOR: "1" });
  const A: Cmd = {
    label: "A dbg",
    argv: [...deno.dbg, "k8s", "-q", "--image", IMAGE, "web/api", "--", "true"],
    env,
  };
  const B: Cmd = {
    label: "B kubectl debug",
    argv: [
      c.kubectlPath,
      ...["debug", "web", "--target", "api", "--image", IMAGE, "--profile", "general"],
      ...["--image-pull-policy", "IfNotPresent", "--attach", "--quiet", "--", "true"],
    ],
    env,
  };
  const N: Cmd = { label: "deno no-op", argv: deno.noop, env };
  const V: Cmd = { label: "kubectl version", argv: [c.kubectlPath, "version"], env };
  const ver = await c.kubectl(["version", "-o", "json"]);
  const v = JSON.parse(ver.stdout);
  console.log(
    `kubectl / server: ${v.clientVersion?.gitVersion} / ${v.serverVersion?.gitVersion}`,
  );
  console.log(`A: ${A.argv.join(" ")}\nB: ${B.argv.join(" ")}`);
  await measure({ A, B, N, V }, runs, t0);
}
