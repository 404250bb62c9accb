import assert from "node:assert/strict";
import type * as k8s from "@kubernetes/client-node";
import { resolveImage } from "../../images/catalog.ts";
import type { TargetFacts } from "../../lib/adapter.ts";
import { validateOptions } from "../../lib/options.ts";
import { makePlan } from "../../lib/plan.ts";
import { adapter } from "../k8s.ts";
import { keeperArch, keeperElf } from "../_keeper.ts";
import { copyPod, keeperScript, nodePod } from "./copy.ts";

const facts: TargetFacts = {
  id: "c1",
  name: "web/api",
  running: false,
  state: "waiting (CrashLoopBackOff)",
  pid: 0,
  pidNamespace: "shared",
  user: "",
  readOnlyRootfs: false,
  privileged: false,
  cwd: "/app",
  ipc: "private",
  copy: { ended: "exited with code 3", entrypoint: ["/app/server"], volumes: false },
};
const plan = makePlan(
  validateOptions({ runtime: "k8s", target: "web/api", command: [] }, { copy: true }, {
    io: { stdinIsTerminal: false },
    supports: adapter.supports,
  }),
  facts,
  resolveImage(undefined),
  "0123abcd",
);

Deno.test("keeperScript() writes the keeper of the machine it runs on, with sh's printf", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dbg-keeper-script-" });
  try {
    const out = await new Deno.Command("/bin/sh", {
      args: ["-c", keeperScript(`${dir}/keeper`)],
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const written = await Deno.readFile(`${dir}/keeper`);
    assert.deepEqual(written, keeperElf(keeperArch(Deno.build.arch)!));
    assert.equal((await Deno.stat(`${dir}/keeper`)).mode! & 0o777, 0o755);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("copyPod() runs the keeper in the target, on the same node, with nothing to adopt it", () => {
  const pod: k8s.V1Pod = {
    metadata: {
      name: "web",
      labels: { app: "web" },
      ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-1", uid: "u" }],
    },
    spec: {
      nodeName: "node-1",
      priority: 0,
      containers: [
        {
          name: "api",
          image: "api:1",
          command: ["/app/server"],
          args: ["--port", "80"],
          livenessProbe: { httpGet: { port: 80 } },
          lifecycle: { preStop: { exec: { command: ["/app/drain"] } } },
          volumeMounts: [{ name: "data", mountPath: "/data" }],
        },
        { name: "proxy", image: "proxy:1", readinessProbe: { tcpSocket: { port: 1 } } },
      ],
      ephemeralContainers: [{ name: "dbg-old", image: "busybox" }],
      volumes: [{ name: "data", emptyDir: {} }],
    },
  };
  const copy = copyPod(pod, "api", plan);
  assert.equal(copy.metadata?.name, "dbg-0123abcd-copy");
  assert.deepEqual(copy.metadata?.labels, { "dbg.session": "0123abcd", "dbg.copy-of": "web" });
  assert.equal(copy.metadata?.ownerReferences, undefined);
  const spec = copy.spec!;
  assert.equal(spec.nodeName, "node-1");
  assert.equal(spec.restartPolicy, "Never");
  assert.equal(spec.shareProcessNamespace, true);
  assert.equal(spec.ephemeralContainers, undefined);
  assert.equal(spec.priority, undefined);
  const [api, proxy] = spec.containers;
  assert.deepEqual(api.command, ["/.dbg/keeper"]);
  assert.equal(api.args, undefined);
  assert.equal(api.livenessProbe, undefined);
  assert.equal(api.lifecycle, undefined);
  assert.deepEqual(api.volumeMounts?.map((m) => m.mountPath), ["/data", "/.dbg"]);
  assert.equal(proxy.readinessProbe, undefined);
  assert.equal(proxy.command, undefined, "the other containers run as they did");
  const init = spec.initContainers!.at(-1)!;
  assert.equal(init.image, plan.image.ref);
  assert.equal(init.securityContext?.runAsNonRoot, true);
  assert.deepEqual(init.securityContext?.capabilities, { drop: ["ALL"] });
  // The original is untouched.
  assert.deepEqual(pod.spec?.containers[0].command, ["/app/server"]);
});

Deno.test("nodePod() shares the host's namespaces and mounts the node's root at /host", () => {
  const spec = nodePod("node-1", plan).spec!;
  assert.equal(spec.nodeName, "node-1");
  assert.ok(spec.hostPID && spec.hostNetwork && spec.hostIPC);
  assert.deepEqual(spec.tolerations, [{ operator: "Exists" }]);
  assert.equal(spec.containers[0].securityContext?.privileged, undefined);
  assert.ok(spec.containers[0].volumeMounts?.some((m) => m.mountPath === "/host"));
  assert.ok(spec.volumes?.some((v) => v.hostPath?.path === "/"));
});
