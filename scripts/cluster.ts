/**
 * The tests' private single-node Kubernetes (tests/helpers/cluster.ts), by hand. As root:
 *
 *     deno run -A scripts/cluster.ts build   # builds (or finds cached) binaries; prints their dir
 *     deno run -A scripts/cluster.ts up      # starts a cluster and stays in the foreground
 *
 * `up` prints the `export KUBECONFIG=…` line of the admin, the kubeconfig of the limited user
 * and the path of kubectl; Ctrl-C (or SIGTERM) tears everything down.
 *
 * @module
 */

import { buildClusterBinaries, LIMITED_GROUP, startCluster } from "../tests/helpers/cluster.ts";

const USAGE = "usage: deno run -A scripts/cluster.ts build|up";

async function up(): Promise<void> {
  let signal: Deno.Signal | null = null;
  const stopRequested = new Promise<Deno.Signal>((resolve) => {
    for (const s of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(s, () => {
        signal ??= s;
        resolve(s);
      });
    }
  });
  const started = performance.now();
  const k = await startCluster();
  if (signal === null) {
    console.log(
      [
        `# cluster up in ${((performance.now() - started) / 1000).toFixed(1)}s: ${k.server}`,
        `# (dir ${k.dir}, containerd ${k.containerd.address})`,
        `export KUBECONFIG=${k.kubeconfig.admin}`,
        `# limited user (group ${LIMITED_GROUP}): ${k.kubeconfig.limited}`,
        `# kubectl: ${k.kubectlPath}`,
        "# Ctrl-C stops the cluster.",
      ].join("\n"),
    );
  }
  const s = await stopRequested;
  console.log(`# ${s}: stopping`);
  await k.stop();
  console.log("# stopped");
}

if (import.meta.main) {
  const [cmd, ...rest] = Deno.args;
  if (rest.length > 0 || !["build", "up"].includes(cmd)) {
    console.error(USAGE);
    Deno.exit(2);
  }
  if (cmd === "build") console.log(await buildClusterBinaries());
  else await up();
  Deno.exit(0);
}
