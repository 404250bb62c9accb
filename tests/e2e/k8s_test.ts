/**
 * `dbg k8s` end to end on a real single-node Kubernetes (etcd, kube-apiserver and kubelet built
 * from their Go modules, containerd's CRI; tests/helpers/cluster.ts). Pods use a fixed node name,
 * and hostNetwork unless Pod Security forbids it (then a loopback-only CNI plugin gives them a
 * network namespace of their own).
 *
 * @module
 */

import assert from "node:assert/strict";
import { clusterOrSkip, type PrivateCluster } from "../helpers/cluster.ts";
import { targetImageForUser, upperListing } from "../helpers/containerd.ts";
import { dbgArgv, runDbg, spawnDbg } from "../helpers/dbg.ts";
import { sh } from "../helpers/dockerd.ts";
import { describeProcs, othersInPidNamespace } from "../helpers/pidns.ts";
import { assertCooked, EXITED, exitOf, poll, shellQuote as q, Tty } from "../helpers/tty.ts";
import { accessScenarios } from "./_access.ts";
import { killSoak, terminalStop } from "./_soak.ts";

const TARGET = "docker.io/dbg-test/target:latest";

/** A target container spec: the shell-less test program, never pulled. */
function app(name: string, extra: Record<string, unknown> = {}) {
  return { name, image: TARGET, imagePullPolicy: "Never", ...extra };
}

/** State of every dbg ephemeral container in a pod: name → running|terminated|waiting. */
async function dbgStates(
  c: PrivateCluster,
  pod: string,
  ns = "default",
): Promise<Record<string, string>> {
  const r = await c.kubectl(["-n", ns, "get", "pod", pod, "-o", "json"]);
  const statuses = JSON.parse(r.stdout).status?.ephemeralContainerStatuses ?? [];
  const out: Record<string, string> = {};
  for (const s of statuses) {
    if (s.name.startsWith("dbg-")) out[s.name] = Object.keys(s.state ?? {})[0] ?? "?";
  }
  return out;
}

/**
 * Waits until a dbg container of `pod` that is not in `before` runs (containers of earlier runs
 * may still show as running for a moment), then gives dbg half a second to attach to it.
 */
async function sessionAttached(c: PrivateCluster, pod: string, before: Set<string>) {
  await poll("the session's container running", async () => {
    const states = Object.entries(await dbgStates(c, pod));
    return states.some(([n, st]) => !before.has(n) && st === "running") ? true : null;
  }, 30_000);
  await new Promise((r) => setTimeout(r, 500));
}

/**
 * Starts a TTY session on `pod`, whose dbg holds it while the caller joins it from elsewhere.
 * Returns the session's name and its terminal (the caller kills it).
 */
async function heldSession(c: PrivateCluster, pod: string): Promise<{ name: string; tty: Tty }> {
  const before = new Set(Object.keys(await dbgStates(c, pod)));
  const argv = dbgArgv(["k8s", "--kubeconfig", c.kubeconfig.admin, "-q", pod]);
  const tty = await Tty.start(`sh -c ${q(`${argv.map(q).join(" ")}; echo EXIT=$?; sleep 30`)}`);
  try {
    await tty.waitFor(/^\[dbg\] \/ #\s*$/m, 40_000);
    const states = await dbgStates(c, pod);
    const name = Object.entries(states).find(([n, s]) => !before.has(n) && s === "running")?.[0];
    assert.ok(name, JSON.stringify(states));
    return { name, tty };
  } catch (e) {
    await tty.kill();
    throw e;
  }
}

Deno.test({
  name: "dbg k8s end to end (real kube-apiserver, etcd, kubelet and containerd)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const c = await clusterOrSkip();
    if (!c) return;
    const dbg = (args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}) =>
      runDbg(["k8s", "--kubeconfig", c.kubeconfig.admin, ...args], opts);
    /** `dbg k8s` with the admin's kubeconfig as `edit` changes it, written into `dir`. */
    const dbgEdited = async (
      dir: string,
      // deno-lint-ignore no-explicit-any
      edit: (config: any) => void,
      args: string[],
      opts: { env?: Record<string, string> } = {},
    ) => {
      const config = JSON.parse(await Deno.readTextFile(c.kubeconfig.admin));
      edit(config);
      await Deno.writeTextFile(`${dir}/config`, JSON.stringify(config));
      return await runDbg(["k8s", "--kubeconfig", `${dir}/config`, ...args], opts);
    };
    try {
      const envOf = (who: string) => ({ env: [{ name: "WHO", value: who }] });
      const user101 = await targetImageForUser(c.containerd, "k8s.io", "101:101");
      const one = (name: string, extra: Record<string, unknown>) =>
        c.applyPod({ metadata: { name }, spec: { containers: [app("app", extra)] } });
      await Promise.all([
        one("drop", { command: ["/app/target", "--drop", "1000:1000"] }),
        one("drop-in-place", { command: ["/app/target", "--drop-in-place", "1000:1000"] }),
        one("user101", { image: user101 }),
        one("peek", { command: ["/app/target", "--peek"] }),
        c.applyPod({
          metadata: { name: "hostpid" },
          spec: { hostPID: true, containers: [app("app", envOf("hostpid"))] },
        }),
        one("nonroot-ro", {
          securityContext: { runAsUser: 1000, runAsGroup: 1000, readOnlyRootFilesystem: true },
        }),
        c.applyPod({ metadata: { name: "web" }, spec: { containers: [app("api", envOf("api"))] } }),
        c.applyPod({
          metadata: { name: "nonroot" },
          spec: {
            securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000 },
            containers: [app("app")],
          },
        }),
        c.applyPod({
          metadata: { name: "readonly" },
          spec: { containers: [app("app", { securityContext: { readOnlyRootFilesystem: true } })] },
        }),
        c.applyPod({
          metadata: {
            name: "shared",
            annotations: { "kubectl.kubernetes.io/default-container": "app" },
          },
          spec: {
            shareProcessNamespace: true,
            containers: [app("first", envOf("first")), app("app", envOf("app"))],
          },
        }),
      ]);
      const webPid = await targetPid(c, "web", "api");
      // The target's rootfs snapshot (its id is the container's): what was written to it.
      const webId = await containerId(c, "web", "api");
      const upperBefore = await upperListing(c.containerd, webId, "k8s.io");

      await accessScenarios(t, (args, stdin) => dbg(args, { stdin }), {
        root: "web",
        drop: "drop",
        dropInPlace: "drop-in-place",
        user101: "user101",
        nonrootRo: "nonroot-ro",
        peek: "peek",
      });

      await t.step("-- cmd: output, exit codes and separate stdout/stderr", async () => {
        const r = await dbg([
          "-q",
          "web/api",
          "--",
          "sh",
          "-c",
          "cat /marker.txt; echo e >&2; exit 3",
        ]);
        assert.equal(r.code, 3, r.stderr);
        assert.equal(r.stdout, "target-rootfs-marker\n");
        assert.equal(r.stderr, "e\n");
        const ok = await dbg(["-q", "web", "--", "sh", "-c", 'echo "$WHO $$"']);
        assert.equal(ok.code, 0, ok.stderr);
        assert.match(ok.stdout, /^api \d+\n$/); // the target's env; $ reaches the shell as is
      });

      await t.step("piped stdin reaches the command and ends with EOF", async () => {
        const r = await dbg(["-q", "-i", "web", "--", "sh", "-c", "cat; echo done"], {
          stdin: "one\ntwo\n",
        });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "one\ntwo\ndone\n");
        // More than the socket buffers at once: it flows at the connection's pace, whole.
        const big = "0123456789abcdef".repeat(1 << 19); // 8 MiB
        const counted = await dbg(["-q", "-i", "web", "--", "sh", "-c", "wc -c"], { stdin: big });
        assert.equal(counted.code, 0, counted.stderr);
        assert.equal(counted.stdout.trim(), String(big.length));
      });

      await t.step("the v4 channel protocol of older clusters: output, exit codes", async () => {
        // v4 cannot end the command's input, so without -i the command gets /dev/null.
        const env = { DBG_K8S_CHANNELS: "v4.channel.k8s.io" };
        const r = await dbg(["-q", "--debug", "web", "--", "sh", "-c", "cat; echo e >&2; exit 4"], {
          env,
        });
        assert.equal(r.code, 4, r.stderr);
        assert.equal(r.stdout, "");
        assert.match(r.stderr, /v4\.channel\.k8s\.io/);
        assert.match(r.stderr, /^e$/m);
      });

      await t.step(
        "SIGINT to dbg reaches the command: 130, and nothing keeps running",
        async () => {
          // Containers of earlier steps may still show as running for a moment.
          const before = new Set(Object.keys(await dbgStates(c, "web")));
          const child = spawnDbg([
            ...[
              "k8s",
              "--kubeconfig",
              c.kubeconfig.admin,
              "-q",
              "--debug",
              "web",
              "--",
              "sleep",
              "300",
            ],
          ]);
          await sessionAttached(c, "web", before);
          child.kill("SIGINT");
          const out = await child.output();
          assert.equal(out.code, 130, new TextDecoder().decode(out.stderr));
          await poll("the dbg container ended", async () => {
            return Object.values(await dbgStates(c, "web")).includes("running") ? null : true;
          }, 10_000);
        },
      );

      await t.step("the TTY path: prompt, the target's root, resize, exit code", async () => {
        const argv = dbgArgv(["k8s", "--kubeconfig", c.kubeconfig.admin, "web"]);
        const tty = await Tty.start(
          `sh -c ${q(`${argv.map(q).join(" ")}; echo EXIT=$?; sleep 30`)}`,
          {
            cols: 100,
            rows: 30,
          },
        );
        try {
          await tty.waitFor(/^\[dbg\] \/ #\s*$/m, 40_000);
          await tty.send("ls /; stty size", "Enter");
          await tty.waitFor(/marker\.txt[\s\S]*30 100/, 10_000);
          await tty.resize(120, 40);
          await new Promise((r) => setTimeout(r, 500));
          await tty.send("stty size", "Enter");
          await tty.waitFor(/40 120/, 10_000);
          await tty.send("exit 3", "Enter");
          await tty.waitFor(/EXIT=3/, 15_000);
        } finally {
          await tty.kill();
        }
      });

      await terminalStop(t, {
        argv: dbgArgv(["k8s", "--kubeconfig", c.kubeconfig.admin, "web"]),
        prompt: /^\[dbg\] \/ #\s*$/m,
        hostPid: webPid,
      });

      await t.step(
        "a runAsNonRoot target: plain mode as the target's uid, and says so",
        async () => {
          const r = await dbg([
            "nonroot",
            "--",
            "sh",
            "-c",
            'id -u; cat "$DBG_TARGET_ROOT/marker.txt"',
          ]);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout, "1000\ntarget-rootfs-marker\n");
          assert.match(r.stderr, /plain mode \(the pod requires runAsNonRoot/);
        },
      );

      await t.step("a read-only target: chroot works, writes fail", async () => {
        const r = await dbg(["-q", "readonly", "--", "sh", "-c", "cat /marker.txt; touch /x"]);
        assert.equal(r.code, 1);
        assert.equal(r.stdout, "target-rootfs-marker\n");
        assert.match(r.stderr, /Read-only file system/);
      });

      await t.step(
        "shareProcessNamespace: the default container is found, PID 1 is pause",
        async () => {
          const r = await dbg([
            "-q",
            "shared",
            "--",
            "sh",
            "-c",
            // The name from status, not /proc/1/cmdline: CI once read an empty cmdline of a live
            // pause (the kernel returns nothing when it cannot read the process's argv pages).
            'echo "$WHO"; sed -n "s/^Name:[[:space:]]*//p" /proc/1/status',
          ]);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout, "app\npause\n", r.stderr);
        },
      );

      await t.step("a hostPID pod: the target is found among the host's processes", async () => {
        const r = await dbg(["-q", "hostpid", "--", "sh", "-c", 'cat /marker.txt; echo "$WHO"']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "target-rootfs-marker\nhostpid\n");
      });

      await t.step("deploy/ and sts/: a running pod of the workload, and which one", async () => {
        const labels = { "app.kubernetes.io/name": "shop" };
        await c.kubectl(["apply", "-f", "-"], {
          stdin: JSON.stringify({
            apiVersion: "apps/v1",
            kind: "Deployment",
            metadata: { name: "shop" },
            spec: {
              selector: { matchLabels: labels },
              template: { metadata: { labels }, spec: { containers: [app("shop")] } },
            },
          }),
        });
        // No controller manager runs: the test plays the ReplicaSet's part.
        await c.applyPod({
          metadata: { name: "shop-1", labels },
          spec: { containers: [app("shop")] },
        });
        const r = await dbg(["deploy/shop", "--", "cat", "/marker.txt"]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /^dbg: deploy\/shop: using pod shop-1$/m);
        assert.equal(r.stdout, "target-rootfs-marker\n");
        const dbLabels = { "app.kubernetes.io/name": "db" };
        await c.kubectl(["apply", "-f", "-"], {
          stdin: JSON.stringify({
            apiVersion: "apps/v1",
            kind: "StatefulSet",
            metadata: { name: "db" },
            spec: {
              serviceName: "db",
              selector: { matchLabels: dbLabels },
              template: { metadata: { labels: dbLabels }, spec: { containers: [app("pg")] } },
            },
          }),
        });
        await c.applyPod({
          metadata: { name: "db-0", labels: dbLabels },
          spec: { containers: [app("pg")] },
        });
        const s = await dbg(["sts/db/pg", "--", "true"]);
        assert.equal(s.code, 0, s.stderr);
        assert.match(s.stderr, /^dbg: sts\/db: using pod db-0$/m);
      });

      await t.step("Pod Security restricted: auto picks the restricted profile", async () => {
        await c.createNamespace("locked", { "pod-security.kubernetes.io/enforce": "restricted" });
        await c.applyPod({
          metadata: { name: "app", namespace: "locked" },
          spec: {
            hostNetwork: false,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 1000,
              seccompProfile: { type: "RuntimeDefault" },
            },
            containers: [app("app", {
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
            })],
          },
        }, "locked");
        const r = await dbg([
          "-n",
          "locked",
          "app",
          "--",
          "sh",
          "-c",
          'cat "$DBG_TARGET_ROOT/marker.txt"',
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "target-rootfs-marker\n");
        assert.match(r.stderr, /restricted profile/);
        const refused = await dbg(["-n", "locked", "--profile", "general", "app", "--", "true"]);
        assert.equal(refused.code, 125);
        assert.match(refused.stderr, /^dbg: Pod Security admission rejected the debug container/m);
        assert.match(refused.stderr, /Hint: .*--profile restricted/);
      });

      await t.step(
        "the kubeconfig's CA alone is trusted, not also the system's (no token to a stranger)",
        async () => {
          // The server's CA is trusted system-wide; the kubeconfig names another CA.
          const dir = await Deno.makeTempDir({ prefix: "dbg-ca-" });
          try {
            const other = `${dir}/other.crt`;
            const made = await sh([
              ...["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"],
              ...["-subj", "/CN=not the cluster's CA", "-keyout", `${dir}/other.key`],
              ...["-out", other],
            ]);
            assert.equal(made.code, 0, made.stderr);
            const env = { DENO_TLS_CA_STORE: "system", SSL_CERT_FILE: c.caFile };
            const r = await dbgEdited(
              dir,
              (k) => {
                k.clusters[0].cluster["certificate-authority"] = other;
              },
              ["web", "--", "true"],
              { env },
            );
            assert.equal(r.code, 125, r.stderr);
            assert.match(
              r.stderr,
              /^dbg: The Kubernetes API server at \S+ has a certificate the kubeconfig's CA does not sign \(.+\)$/m,
            );
            assert.equal(r.stderr.trim().split("\n").length <= 2, true, r.stderr);
          } finally {
            await Deno.remove(dir, { recursive: true });
          }
        },
      );

      await t.step(
        "tls-server-name is the name the server's certificate is checked for",
        async () => {
          // (The server's certificate holds DNS:kubernetes and IP:127.0.0.1, not wrong.example.)
          const dir = await Deno.makeTempDir({ prefix: "dbg-sni-" });
          try {
            const named = (name: string) =>
              dbgEdited(dir, (k) => {
                k.clusters[0].cluster["tls-server-name"] = name;
              }, ["-q", "web", "--", "true"]);
            const right = await named("kubernetes");
            assert.equal(right.code, 0, right.stderr);
            const wrong = await named("wrong.example");
            assert.equal(wrong.code, 125, wrong.stderr);
            assert.match(
              wrong.stderr,
              /^dbg: The Kubernetes API server at \S+ has a certificate for another name\nHint: .*tls-server-name/m,
            );
          } finally {
            await Deno.remove(dir, { recursive: true });
          }
        },
      );

      await t.step("a client certificate signs in for the API calls and the attach", async () => {
        // (The API server's kubelet client certificate: group system:masters, from the cluster's CA.)
        const dir = await Deno.makeTempDir({ prefix: "dbg-cert-" });
        try {
          // deno-lint-ignore no-explicit-any
          const withCert = (k: any) => {
            k.users[0].user = {
              "client-certificate": `${c.dir}/apiserver-kubelet-client.crt`,
              "client-key": `${c.dir}/apiserver-kubelet-client.key`,
            };
          };
          const r = await dbgEdited(dir, withCert, [
            "-q",
            "web",
            "--",
            "sh",
            "-c",
            "echo in; exit 4",
          ]);
          assert.equal(r.code, 4, r.stderr);
          assert.equal(r.stdout, "in\n");
          // (Deno checks a client certificate user's server by the address it connects to.)
          const named = await dbgEdited(dir, (k) => {
            withCert(k);
            k.clusters[0].cluster["tls-server-name"] = "kubernetes";
          }, ["web", "--", "true"]);
          assert.equal(named.code, 125);
          assert.match(
            named.stderr,
            /^dbg: .* has tls-server-name with a client certificate, which dbg does not support$/m,
          );
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      });

      await t.step(
        "errors: RBAC, unknown container, missing pod, image pull, timeout",
        async () => {
          const limited = await runDbg([
            "k8s",
            "--kubeconfig",
            c.kubeconfig.limited,
            "web",
            "--",
            "true",
          ]);
          assert.equal(limited.code, 125);
          assert.match(
            limited.stderr,
            /^dbg: Forbidden: you may not patch pods\/ephemeralcontainers web in namespace default/m,
          );
          assert.match(
            limited.stderr,
            /kubectl auth can-i patch pods --subresource ephemeralcontainers -n default/,
          );
          const nope = await dbg(["web/nope"]);
          assert.equal(nope.code, 125);
          assert.match(nope.stderr, /^dbg: Pod web has no container "nope" \(it has: api\)/m);
          // kubectl's -c names the container too.
          const byFlag = await dbg(["-q", "web", "-c", "api", "--", "sh", "-c", "echo $WHO"]);
          assert.equal(byFlag.stdout, "api\n", byFlag.stderr);
          const flagNope = await dbg(["web", "-c", "nope"]);
          assert.match(flagNope.stderr, /^dbg: Pod web has no container "nope"/m);
          const none = await dbg(["ghost"]);
          assert.match(none.stderr, /^dbg: No such pod: ghost in namespace default/m);
          // The kubelet reports a pull failure in an event at once, and in the pod's status
          // only at its next sync of the pod (after a back-off of about 10 s): dbg says the
          // event. A pod of its own, since a pod whose containers failed before is synced with
          // a longer back-off.
          await c.applyPod({ metadata: { name: "pull" }, spec: { containers: [app("app")] } });
          const pull = await dbg(
            ["pull", "--image", "127.0.0.1:1/nope:1", "--timeout", "8s", "--", "true"],
          );
          assert.equal(pull.code, 125);
          assert.match(
            pull.stderr,
            /^dbg: dbg-\w+: Failed to pull image "127\.0\.0\.1:1\/nope:1"/m,
          );
          assert.match(pull.stderr, /did not start within 8s \(last: Failed to pull image/);
          assert.match(pull.stderr, /Hint: Check the --image name/);
          // A stop ends the wait at once, not after --timeout.
          const waiter = spawnDbg([
            ...["k8s", "--kubeconfig", c.kubeconfig.admin, "-q", "pull"],
            ...["--image", "127.0.0.1:1/nope:2", "--timeout", "60s", "--", "true"],
          ]);
          await new Promise((r) => setTimeout(r, 3000));
          const t0 = Date.now();
          waiter.kill("SIGTERM");
          const waited = await waiter.output();
          assert.equal(waited.code, 143, new TextDecoder().decode(waited.stderr));
          assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms`);
          await c.kubectl(["apply", "-f", "-"], {
            stdin: JSON.stringify({
              apiVersion: "v1",
              kind: "Pod",
              metadata: { name: "done" },
              spec: {
                nodeName: "localhost",
                hostNetwork: true,
                restartPolicy: "Never",
                containers: [{
                  name: "once",
                  image: "docker.io/library/busybox:musl",
                  imagePullPolicy: "Never",
                  command: ["true"],
                }],
              },
            }),
          });
          await poll("pod done to succeed", async () => {
            const r = await c.kubectl(["get", "pod", "done", "-o", "jsonpath={.status.phase}"]);
            return r.stdout === "Succeeded" ? true : null;
          }, 30_000);
          const done = await dbg(["done"]);
          assert.equal(done.code, 125);
          assert.match(
            done.stderr,
            /^dbg: Pod done is not running: phase Succeeded; it exited with code 0 .*\nHint: .* dbg k8s -n default done\/once --copy$/m,
          );
          const never = await dbg([
            "web",
            "--image",
            "nosuch/img:1",
            "--pull",
            "never",
            "--",
            "true",
          ]);
          assert.match(never.stderr, /cannot start: ErrImageNeverPull/);
        },
      );

      await t.step(
        "Ctrl-C on a terminal while the container waits: 130, the terminal as it was",
        async () => {
          // The terminal stays cooked until the container runs, so Ctrl-C signals dbg (and the
          // shell around it, which a trap keeps alive, as an interactive shell would be).
          const argv = dbgArgv([
            ...["k8s", "--kubeconfig", c.kubeconfig.admin, "pull"],
            ...["--image", "127.0.0.1:1/nope:4", "--timeout", "60s"],
          ]);
          const tty = await Tty.start(
            `sh -c ${q(`trap : INT; ${argv.map(q).join(" ")}; echo EXIT=$?; stty -a; sleep 30`)}`,
          );
          try {
            await tty.waitFor(/Failed to pull image "127\.0\.0\.1:1\/nope:4"/, 30_000);
            const t0 = Date.now();
            await tty.send("C-c");
            const screen = await tty.waitFor(EXITED, 10_000);
            assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms`);
            assert.equal(exitOf(screen), 130, screen);
            assertCooked(screen);
          } finally {
            await tty.kill();
          }
        },
      );

      await t.step("a user who may add but not attach is told which permission", async () => {
        await c.kubectl(["apply", "-f", "-"], {
          stdin: JSON.stringify({
            apiVersion: "v1",
            kind: "List",
            items: [{
              apiVersion: "rbac.authorization.k8s.io/v1",
              kind: "ClusterRole",
              metadata: { name: "dbg-noattach" },
              rules: [
                { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
                { apiGroups: [""], resources: ["pods/ephemeralcontainers"], verbs: ["patch"] },
              ],
            }, {
              apiVersion: "rbac.authorization.k8s.io/v1",
              kind: "ClusterRoleBinding",
              metadata: { name: "dbg-noattach" },
              roleRef: {
                apiGroup: "rbac.authorization.k8s.io",
                kind: "ClusterRole",
                name: "dbg-noattach",
              },
              subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "noattach" }],
            }],
          }),
        });
        await c.applyPod({ metadata: { name: "lonely" }, spec: { containers: [app("app")] } });
        // The admin impersonates the user (kubeconfig `as`), on the WebSocket too.
        const cfg = JSON.parse((await c.kubectl(["config", "view", "--raw", "-o", "json"])).stdout);
        cfg.users[0].user.as = "noattach";
        const file = await Deno.makeTempFile({ prefix: "dbg-kcfg-" });
        try {
          await Deno.writeTextFile(file, JSON.stringify(cfg));
          const r = await runDbg(["k8s", "-q", "lonely", "--", "true"], {
            env: { KUBECONFIG: file },
          });
          assert.equal(r.code, 125);
          assert.match(r.stderr, /^dbg: Cannot attach to dbg-\w+ in pod lonely: forbidden/m);
          assert.match(r.stderr, /kubectl auth can-i create pods --subresource attach -n default/);
          // The container never got its go line: it gives up waiting for dbg by itself.
          assert.match(r.stderr, /dbg-\w+ ends by itself within 25 s$/m);
        } finally {
          await Deno.remove(file);
        }
      });

      await t.step("a running session can be listed and joined from another terminal", async () => {
        const held = await heldSession(c, "web");
        try {
          const listed = await dbg(["web", "--sessions"]);
          assert.equal(listed.code, 0, listed.stderr);
          assert.match(listed.stdout, new RegExp(`^${held.name}\\s+api\\s+running`, "m"));
          const again = dbgArgv([
            "k8s",
            "--kubeconfig",
            c.kubeconfig.admin,
            "web",
            "--attach",
            held.name,
          ]);
          const tty = await Tty.start(
            `sh -c ${q(`${again.map(q).join(" ")}; echo EXIT=$?; sleep 30`)}`,
            {},
          );
          try {
            await tty.waitFor(/reattaching to dbg-/, 20_000);
            await tty.send("echo back-$((40+2))", "Enter");
            await tty.waitFor(/back-42/, 10_000);
            // One shell, two terminals: the first shows it too, and its exit ends both.
            await held.tty.waitFor(/back-42/, 10_000);
            await tty.send("exit 4", "Enter");
            await tty.waitFor(/EXIT=4/, 15_000);
            await held.tty.waitFor(/EXIT=4/, 15_000);
          } finally {
            await tty.kill();
          }
        } finally {
          await held.tty.kill();
        }
      });

      // The lifeline ends what a killed dbg leaves; its ephemeral containers stay in the pod
      // (no API removes them), ended.
      const admin = ["k8s", "--kubeconfig", c.kubeconfig.admin];
      await killSoak(t, {
        spawn: (args) => spawnDbg([...admin, ...args]),
        argv: (args) => dbgArgv([...admin, ...args]),
        target: "web",
        hostPid: webPid,
        written: async () => {
          const now = await upperListing(c.containerd, webId, "k8s.io");
          return JSON.stringify(now) === JSON.stringify(upperBefore) ? "" : now.join("\n");
        },
      });

      await t.step(
        "KUBECONFIG with several files, --context, an exec credential plugin",
        async () => {
          const dir = await Deno.makeTempDir({ prefix: "dbg-kcfg-" });
          try {
            const full = JSON.parse(
              (await c.kubectl(["config", "view", "--raw", "-o", "json"])).stdout,
            );
            const a = { ...full, contexts: [], "current-context": "" };
            const b = {
              apiVersion: "v1",
              kind: "Config",
              contexts: full.contexts,
              "current-context": full["current-context"],
            };
            await Deno.writeTextFile(`${dir}/a`, JSON.stringify(a));
            await Deno.writeTextFile(`${dir}/b`, JSON.stringify(b));
            const r = await runDbg(["k8s", "-q", "web", "--", "true"], {
              env: { KUBECONFIG: `${dir}/b:${dir}/a` },
            });
            assert.equal(r.code, 0, r.stderr);
            // A third file: a user whose token comes from an exec credential plugin, picked with
            // --context; the attach's WebSocket carries the same credentials.
            const plugin = `${dir}/plugin.sh`;
            const cred = {
              apiVersion: "client.authentication.k8s.io/v1",
              kind: "ExecCredential",
              status: { token: c.tokens.admin },
            };
            await Deno.writeTextFile(plugin, `#!/bin/sh\necho '${JSON.stringify(cred)}'\n`);
            await Deno.chmod(plugin, 0o755);
            const execCfg = {
              apiVersion: "v1",
              kind: "Config",
              users: [{
                name: "via-plugin",
                user: {
                  exec: {
                    apiVersion: "client.authentication.k8s.io/v1",
                    command: plugin,
                    interactiveMode: "Never",
                  },
                },
              }],
              contexts: [{
                name: "plugin",
                context: { cluster: full.clusters[0].name, user: "via-plugin" },
              }],
            };
            await Deno.writeTextFile(`${dir}/c`, JSON.stringify(execCfg));
            const viaPlugin = await runDbg(
              ["k8s", "-q", "--context", "plugin", "web", "--", "sh", "-c", "cat /marker.txt"],
              { env: { KUBECONFIG: `${dir}/b:${dir}/a:${dir}/c` } },
            );
            assert.equal(viaPlugin.code, 0, viaPlugin.stderr);
            assert.equal(viaPlugin.stdout, "target-rootfs-marker\n");
            const noCtx = await runDbg(["k8s", "--context", "nope", "web"], {
              env: { KUBECONFIG: `${dir}/b:${dir}/a:${dir}/c` },
            });
            assert.match(noCtx.stderr, /^dbg: No context "nope" in the kubeconfig \(contexts: /m);
          } finally {
            await Deno.remove(dir, { recursive: true });
          }
        },
      );

      await t.step("no leftovers: no dbg container runs, no zombies in the target", async () => {
        // dbg returns when the command has ended; the pod's status says so a moment later.
        for (const pod of ["web", "nonroot", "readonly", "shared"]) {
          const running = async () =>
            Object.entries(await dbgStates(c, pod)).filter(([, s]) => s === "running");
          await poll(`no running dbg container in ${pod}`, async () => {
            return (await running()).length === 0 ? true : null;
          }, 10_000).catch(async () => {
            const spec = JSON.parse((await c.kubectl(["get", "pod", pod, "-o", "json"])).stdout);
            const left = await running();
            const cmds = (spec.spec.ephemeralContainers ?? []).filter((e: { name: string }) =>
              left.some(([n]) => n === e.name)
            ).map((e: { name: string; command: string[]; tty?: boolean }) =>
              `${e.name} tty=${!!e.tty} ${e.command.slice(4).join(" ")}`
            );
            assert.deepEqual(cmds, [], pod);
          });
        }
        const zombies = (await othersInPidNamespace(webPid)).filter((p) => p.state.startsWith("Z"));
        assert.deepEqual(describeProcs(zombies), []);
        // Nothing was written into the target by any of the sessions on it.
        assert.deepEqual(await upperListing(c.containerd, webId, "k8s.io"), upperBefore);
      });

      await t.step(
        "the node's kubelet is gone: a reattach says so at once, a new session names the node",
        async () => {
          await c.applyPod({ metadata: { name: "far" }, spec: { containers: [app("app")] } });
          const { name, tty: held } = await heldSession(c, "far");
          await c.killKubelet();
          try {
            const again = dbgArgv(
              ["k8s", "--kubeconfig", c.kubeconfig.admin, "far", "--attach", name],
            );
            const tty = await Tty.start(
              `sh -c ${q(`${again.map(q).join(" ")}; echo EXIT=$?; sleep 30`)}`,
              { cols: 400 },
            );
            try {
              const screen = await tty.waitFor(/EXIT=\d+/, 15_000);
              assert.match(
                screen,
                /dbg: Cannot attach to dbg-\w+ in pod far: the API server cannot reach the node's kubelet \(dial tcp 127\.0\.0\.1:\d+: connect: connection refused\)/,
              );
              assert.match(screen, /goes on: reattach with/);
              assert.match(screen, /^EXIT=125$/m);
            } finally {
              await tty.kill();
            }
            const fresh = await dbg(["-q", "far", "--timeout", "4s", "--", "true"]);
            assert.equal(fresh.code, 125);
            assert.match(
              fresh.stderr,
              /^dbg: dbg-\w+ did not start within 4s \(the kubelet of node localhost has not reported it\)$/m,
            );
            assert.match(fresh.stderr, /kubectl get node localhost/);
          } finally {
            await held.kill();
            await c.startKubelet();
          }
        },
      );

      // Last: it kills the API server.
      await t.step("the API server dies mid-session: dbg ends at once with 125", async () => {
        const before = new Set(Object.keys(await dbgStates(c, "web")));
        const child = spawnDbg(
          ["k8s", "--kubeconfig", c.kubeconfig.admin, "-q", "--debug", "web", "--", "sleep", "300"],
        );
        await sessionAttached(c, "web", before);
        const apiserver = Number(await Deno.readTextFile(`${c.dir}/kube-apiserver.pid`));
        const t0 = Date.now();
        Deno.kill(apiserver, "SIGKILL");
        const out = await child.output();
        const stderr = new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 125, stderr);
        assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
        assert.match(
          stderr,
          /^dbg: Cannot reach the Kubernetes API server at https:\/\/127\.0\.0\.1:/m,
        );
        assert.match(stderr, /dbg-\w+ may still run in pod web: once the API server answers/);
      });
    } finally {
      await c.stop();
    }
  },
});

/** The runtime's id of a pod's container (containerd's container and snapshot id). */
async function containerId(c: PrivateCluster, pod: string, container: string): Promise<string> {
  const r = await c.kubectl([
    "get",
    "pod",
    pod,
    "-o",
    `jsonpath={.status.containerStatuses[?(@.name=="${container}")].containerID}`,
  ]);
  return r.stdout.replace(/^.*:\/\//, "").trim();
}

/** Host PID of a container's main process (its task, through the CRI's containerd). */
async function targetPid(c: PrivateCluster, pod: string, container: string): Promise<number> {
  const id = await containerId(c, pod, container);
  const tasks = await c.containerd.ctr(["tasks", "ls"], { namespace: "k8s.io" });
  for (const line of tasks.stdout.split("\n")) {
    const [task, pid] = line.trim().split(/\s+/);
    if (task === id) return Number(pid);
  }
  throw new Error(`no task ${id}`);
}
