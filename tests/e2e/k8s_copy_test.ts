/**
 * End-to-end tests of `dbg k8s` on containers that do not run, and on the node, against a real
 * single-node cluster: a crashlooping container (beside one that keeps running) is explained
 * without `--copy` and debugged in a copy of its pod with it; `node/localhost` shows the node's
 * root. Afterwards no pod of dbg's may be left, and the original pod is as it was. Without a
 * TTY, on a terminal (tmux), under signals, and as a user who may not create pods.
 */

import assert from "node:assert/strict";
import type { PrivateCluster } from "../helpers/cluster.ts";
import { clusterOrSkip } from "../helpers/cluster.ts";
import { dbgArgv, runDbg, spawnDbg } from "../helpers/dbg.ts";
import { poll } from "../helpers/tty.ts";
import { type CopyRuntime, copySignalStep, copyTerminalStep } from "./_copy.ts";

const TARGET = "docker.io/dbg-test/target:latest";
const BUSYBOX = "docker.io/library/busybox:musl";

/** dbg's pods (copies, node pods) in every namespace. */
async function dbgPods(c: PrivateCluster): Promise<string[]> {
  const r = await c.kubectl(["get", "pods", "-A", "-l", "dbg.session", "-o", "name"]);
  return r.stdout.split("\n").filter(Boolean);
}

/** Waits until no pod of dbg's is left (deletion takes the kubelet a moment). */
async function noneLeft(c: PrivateCluster): Promise<void> {
  await poll("dbg's pods gone", async () => (await dbgPods(c)).length ? null : true, 30_000)
    .catch(async () => assert.deepEqual(await dbgPods(c), []));
}

/** Creates a pod on the node without waiting for it to run: its containers may crash. */
async function createPod(
  c: PrivateCluster,
  namespace: string,
  pod: { metadata: Record<string, unknown>; spec: Record<string, unknown> },
): Promise<void> {
  const body = {
    apiVersion: "v1",
    kind: "Pod",
    ...pod,
    spec: { nodeName: "localhost", ...pod.spec },
  };
  await c.kubectl(["apply", "-n", namespace, "-f", "-"], { stdin: JSON.stringify(body) });
}

/** Waits (60 s at most) until `jsonpath` of pod `name` passes `ok`. */
async function podUntil(
  c: PrivateCluster,
  namespace: string,
  name: string,
  jsonpath: string,
  ok: (value: string) => boolean,
): Promise<void> {
  await poll(`${namespace}/${name}: ${jsonpath}`, async () => {
    const r = await c.kubectl(["-n", namespace, "get", "pod", name, "-o", `jsonpath=${jsonpath}`]);
    return ok(r.stdout) ? true : null;
  }, 60_000);
}

/** The parts of a pod that a session must not change. */
async function podShape(c: PrivateCluster, name: string): Promise<string> {
  const r = await c.kubectl(["get", "pod", name, "-o", "json"]);
  const p = JSON.parse(r.stdout);
  return JSON.stringify({
    uid: p.metadata.uid,
    labels: p.metadata.labels,
    containers: p.spec.containers.map((c: { name: string }) => c.name),
    ephemeral: p.spec.ephemeralContainers ?? [],
  });
}

Deno.test({
  name: "dbg k8s on a crashlooping pod (--copy) and on the node (real cluster)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const c = await clusterOrSkip();
    if (!c) return;
    const dbg = (args: string[], user: "admin" | "limited" = "admin") =>
      runDbg(["k8s", "--kubeconfig", c.kubeconfig[user], ...args]);
    try {
      // api writes a file and crashes at once, again and again; side keeps running.
      await createPod(c, "default", {
        metadata: { name: "crashy", labels: { app: "crashy" } },
        spec: {
          hostNetwork: true,
          containers: [
            {
              name: "api",
              image: TARGET,
              imagePullPolicy: "Never",
              command: ["/app/target", "--crash", "note", "3"],
              workingDir: "/app",
              env: [{ name: "FOO", value: "bar x" }],
              livenessProbe: { exec: { command: ["/app/target"] }, periodSeconds: 1 },
            },
            { name: "side", image: TARGET, imagePullPolicy: "Never" },
          ],
        },
      });
      const restarted = (n: string) => Number(n) >= 1;
      await podUntil(
        c,
        "default",
        "crashy",
        "{.status.containerStatuses[?(@.name=='api')].restartCount}",
        restarted,
      );
      const shape = await podShape(c, "crashy");

      await t.step("without --copy: the state, the last exit, and the hint", async () => {
        const r = await dbg(["crashy/api", "--", "true"]);
        assert.equal(r.code, 125);
        assert.match(
          r.stderr,
          /^dbg: crashy\/api is not running: \w+, restarted \d+ times?; it exited with code 3 .*\(Error\)\nHint: Debug a copy of the pod in which api runs the debugger: dbg k8s -n default crashy\/api --copy$/m,
        );
      });

      await t.step("--copy: the target's env and working dir, the other container", async () => {
        const r = await dbg([
          ...["crashy/api", "--copy", "--", "sh", "-c"],
          'pwd; echo "FOO=$FOO"; echo "$DBG_ENTRYPOINT"; ps -o args | grep -c "^/app/target$"; exit 7',
        ]);
        assert.equal(r.code, 7, r.stderr);
        // side's /app/target runs in the copy's shared PID namespace.
        assert.equal(r.stdout, "/app\nFOO=bar x\n/app/target --crash note 3\n1\n");
        assert.match(
          r.stderr,
          /^dbg: crashy\/api .*exited with code 3 .*: this session runs in a throwaway copy without the files it wrote; changes are discarded$/m,
        );
        await noneLeft(c);
        assert.equal(await podShape(c, "crashy"), shape);
      });

      await t.step("$DBG_ENTRYPOINT runs the target's command in the copy", async () => {
        const r = await dbg([
          ...["-q", "crashy/api", "--copy", "--", "sh", "-c"],
          'eval "$DBG_ENTRYPOINT"; echo "rc=$?"; cat note',
        ]);
        assert.equal(r.stdout, "rc=3\nwritten before the crash\n", r.stderr);
        await noneLeft(c);
      });

      await t.step(
        "--keep: the copy has no probes, labels or owners, and --sessions lists it",
        async () => {
          const r = await dbg(["-q", "--keep", "crashy/api", "--copy", "--", "true"]);
          assert.equal(r.code, 0, r.stderr);
          const [pod] = await dbgPods(c);
          assert.ok(pod, "the copy is kept");
          const p = JSON.parse((await c.kubectl(["get", pod, "-o", "json"])).stdout);
          assert.deepEqual(Object.keys(p.metadata.labels).sort(), ["dbg.copy-of", "dbg.session"]);
          assert.equal(p.metadata.ownerReferences, undefined);
          assert.equal(p.spec.restartPolicy, "Never");
          assert.equal(p.spec.shareProcessNamespace, true);
          assert.equal(p.spec.nodeName, "localhost");
          for (const ctr of p.spec.containers) assert.equal(ctr.livenessProbe, undefined);
          assert.deepEqual(p.spec.containers[0].command, ["/.dbg/keeper"]);
          const sessions = await dbg(["crashy/api", "--copy", "--sessions"]);
          assert.match(
            sessions.stdout,
            new RegExp(`^${pod.replace("pod/", "")}\\s+copy of crashy\\s+Running`, "m"),
          );
          // Its session has ended: the copy is gc's (once the kubelet has reported the end).
          const gcArgs = ["gc", "k8s", "--kubeconfig", c.kubeconfig.admin];
          const name = pod.replace("pod/", "");
          const dry = await poll("the kept copy gc's", async () => {
            const r = await runDbg([...gcArgs, "--dry-run"]);
            return r.code === 0 && r.stdout.startsWith("would remove") ? r : null;
          }, 15_000);
          assert.match(
            dry.stdout,
            new RegExp(`^would remove k8s pod ${name} of crashy \\(ended, `),
          );
          assert.ok(await dbgPods(c).then((p) => p.includes(pod)), "dry run removed nothing");
          const gc = await runDbg(gcArgs);
          assert.match(gc.stdout, new RegExp(`^removed k8s pod ${name} of crashy \\(`));
          await noneLeft(c);
        },
      );

      await t.step(
        "SIGKILL: the copy's session ends within 30 s, and gc deletes the copy",
        async () => {
          const gcArgs = ["gc", "k8s", "--kubeconfig", c.kubeconfig.admin];
          const child = spawnDbg([
            "k8s",
            "--kubeconfig",
            c.kubeconfig.admin,
            "-q",
            "crashy/api",
            "--copy",
            "--",
            "sleep",
            "300",
          ]);
          try {
            await poll("the copy's session running", async () => {
              const pods = await dbgPods(c);
              if (!pods.length) return null;
              const p = JSON.parse((await c.kubectl(["get", pods[0], "-o", "json"])).stdout);
              return (p.status.ephemeralContainerStatuses ?? []).some((
                  s: { state: Record<string, unknown> },
                ) => s.state.running
                )
                ? true
                : null;
            }, 60_000);
            // A live session's copy is not gc's.
            assert.match((await runDbg(gcArgs)).stdout, /^Nothing to remove on k8s /);
            await new Promise((r) => setTimeout(r, 1000)); // the lifeline is open
          } finally {
            child.kill("SIGKILL");
            await child.output();
          }
          const removed = await poll("the copy gc's", async () => {
            const r = await runDbg([...gcArgs, "--dry-run"]);
            return /^would remove k8s pod /.test(r.stdout) ? r : null;
          }, 30_000);
          assert.match(removed.stdout, /of crashy \(ended, /);
          assert.equal((await runDbg(gcArgs)).code, 0);
          await noneLeft(c);
        },
      );

      const copies: CopyRuntime = {
        dbg,
        argv: (args) => dbgArgv(["k8s", "--kubeconfig", c.kubeconfig.admin, ...args]),
        spawn: (args) => spawnDbg(["k8s", "--kubeconfig", c.kubeconfig.admin, ...args]),
        clean: async () => {
          await noneLeft(c);
          assert.equal(await podShape(c, "crashy"), shape);
        },
        target: ["crashy/api", "--copy"],
        promptMs: 60_000,
      };
      await copyTerminalStep(t, copies);
      await copySignalStep(t, copies, { runs: 3, withinMs: 3000 });

      await t.step("a completed pod (restartPolicy Never) is copied too", async () => {
        await createPod(c, "default", {
          metadata: { name: "done" },
          spec: {
            hostNetwork: true,
            restartPolicy: "Never",
            containers: [{
              name: "once",
              image: TARGET,
              imagePullPolicy: "Never",
              command: ["/app/target", "--crash", "note", "0"],
            }],
          },
        });
        await podUntil(c, "default", "done", "{.status.phase}", (p) => p === "Succeeded");
        const r = await dbg(["done", "--copy", "--", "sh", "-c", 'echo "$DBG_ENTRYPOINT"']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "/app/target --crash note 0\n");
        assert.match(
          r.stderr,
          /^dbg: done\/once exited with code 0 .*\(Completed\): this session/m,
        );
        await noneLeft(c);
      });

      await t.step("Pod Security restricted binds the copy as an ephemeral container", async () => {
        await c.createNamespace("locked", { "pod-security.kubernetes.io/enforce": "restricted" });
        await createPod(c, "locked", {
          metadata: { name: "crashy" },
          spec: {
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 1000,
              seccompProfile: { type: "RuntimeDefault" },
            },
            containers: [{
              name: "api",
              image: TARGET,
              imagePullPolicy: "Never",
              command: ["/app/target", "--crash", "/tmp/note", "3"],
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
            }],
          },
        });
        await podUntil(
          c,
          "locked",
          "crashy",
          "{.status.containerStatuses[0].restartCount}",
          restarted,
        );
        const r = await dbg([
          ...["-n", "locked", "crashy", "--copy", "--", "sh", "-c"],
          'id -u; cat "$DBG_TARGET_ROOT/marker.txt"',
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "1000\ntarget-rootfs-marker\n");
        assert.match(r.stderr, /restricted profile/);
        await noneLeft(c);
        const refused = await dbg([
          ...["-n", "locked", "--profile", "general", "crashy", "--copy", "--", "true"],
        ]);
        assert.equal(refused.code, 125);
        assert.match(refused.stderr, /^dbg: Pod Security admission rejected the debug container/m);
        await noneLeft(c);
      });

      await t.step("a user who may not create pods is told which verb is missing", async () => {
        const r = await dbg(["crashy/api", "--copy", "--", "true"], "limited");
        assert.equal(r.code, 125);
        assert.match(r.stderr, /^dbg: Forbidden: you may not create pods in namespace default$/m);
        assert.match(r.stderr, /kubectl auth can-i create pods -n default/);
      });

      await t.step("node/localhost: the node's root as /, in its PID namespace", async () => {
        // / is the node's as its kubelet sees it (the test's own), and the session is in the
        // host's PID namespace: its PID 1 is the node's.
        const rootList = [...Deno.readDirSync("/")].map((e) => e.name).sort();
        const comm = (await Deno.readTextFile("/proc/1/comm")).trim();
        const r = await dbg([
          ...["node/localhost", "--image", BUSYBOX, "--", "sh", "-c"],
          "cat /proc/1/comm; ls -A /",
        ]);
        assert.equal(r.code, 0, r.stderr);
        const [first, ...names] = r.stdout.trim().split("\n");
        assert.equal(first, comm);
        assert.deepEqual(names.sort(), rootList);
        assert.match(r.stderr, /^dbg: node\/localhost: this session runs in a pod of dbg's/m);
        await noneLeft(c);
        const kept = await dbg(["-q", "--keep", "node/localhost", "--", "true"]);
        assert.equal(kept.code, 0, kept.stderr);
        const [pod] = await dbgPods(c);
        const p = JSON.parse((await c.kubectl(["get", pod, "-o", "json"])).stdout);
        assert.equal(p.spec.hostPID, true);
        assert.equal(p.spec.hostIPC, true);
        // Privileged only with --profile sysadmin.
        assert.equal(p.spec.ephemeralContainers[0].securityContext.privileged, undefined);
        await c.kubectl(["delete", pod, "--grace-period=0"]);
        await noneLeft(c);
      });
    } finally {
      await c.stop();
    }
  },
});
