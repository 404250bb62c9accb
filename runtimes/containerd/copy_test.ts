import assert from "node:assert/strict";
import { copySpec, stackUpper } from "./copy.ts";

Deno.test("stackUpper() puts the original's changes, read-only, on top of the copy's lower layers", () => {
  const mounts = [{
    type: "overlay",
    source: "overlay",
    options: ["index=off", "workdir=/s/9/work", "upperdir=/s/9/fs", "lowerdir=/s/2/fs:/s/1/fs"],
  }];
  assert.deepEqual(stackUpper(mounts, "/s/5/fs")[0].options, [
    "index=off",
    "workdir=/s/9/work",
    "upperdir=/s/9/fs",
    "lowerdir=/s/5/fs:/s/2/fs:/s/1/fs",
  ]);
  assert.deepEqual(stackUpper(mounts, undefined), mounts);
});

Deno.test("copySpec() runs the keeper with nothing joined, no privileges, hooks or annotations", () => {
  const original = {
    process: {
      args: ["/app/server"],
      env: ["FOO=bar"],
      cwd: "/app",
      user: { uid: 1000, gid: 1000 },
      terminal: true,
      capabilities: { bounding: ["CAP_SYS_ADMIN"] },
    },
    root: { path: "/var/lib/rootfs", readonly: false },
    hooks: { prestart: [{ path: "/usr/bin/evil" }] },
    annotations: { "io.kubernetes.cri.sandbox-id": "abc" },
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/etc/hosts", type: "bind", source: "/gone/hosts" },
      { destination: "/data", type: "bind", source: "/srv/data" },
    ],
    linux: {
      namespaces: [
        { type: "pid", path: "/proc/42/ns/pid" },
        { type: "network", path: "/var/run/netns/cni-1" },
        { type: "ipc" },
        { type: "cgroup" },
      ],
      cgroupsPath: "kubepods-pod1.slice:cri-containerd:abc",
    },
  };
  const spec = copySpec(original, {
    keeperDir: "/tmp/dbg-copy-1",
    cgroupsPath: "/k8s.io/dbg-1-copy",
    readOnly: true,
    present: (s) => s !== "/gone/hosts",
  }) as typeof original & { mounts: Array<{ destination: string; options?: string[] }> };
  assert.deepEqual(spec.process.args, ["/.dbg/keeper"]);
  assert.deepEqual(spec.process.env, ["FOO=bar"]);
  assert.equal(spec.process.cwd, "/app");
  assert.deepEqual(spec.process.user, { uid: 1000, gid: 1000 });
  assert.equal(spec.process.terminal, false);
  assert.deepEqual(spec.process.capabilities.bounding, []);
  assert.equal(spec.hooks, undefined);
  assert.equal(spec.annotations, undefined);
  assert.deepEqual(spec.root, { path: "rootfs", readonly: true });
  assert.deepEqual(spec.mounts.map((m) => m.destination), ["/proc", "/data", "/.dbg"]);
  assert.ok(spec.mounts[2].options?.includes("ro"));
  assert.deepEqual(spec.linux.namespaces, [
    { type: "pid" },
    { type: "ipc" },
    { type: "uts" },
    { type: "mount" },
    { type: "network" },
    { type: "cgroup" },
  ]);
  assert.equal(spec.linux.cgroupsPath, "/k8s.io/dbg-1-copy");
  // The original is untouched.
  assert.deepEqual(original.process.args, ["/app/server"]);
});
