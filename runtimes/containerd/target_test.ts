import assert from "node:assert/strict";
import { type ContainerRecord, displayName, factsOf, matchContainers } from "./target.ts";

const rec = (namespace: string, id: string, labels: Record<string, string> = {}) =>
  ({
    namespace,
    id,
    labels,
    image: "",
    snapshotter: "overlayfs",
  }) as ContainerRecord;

const all = [
  rec("default", "3f2a9c", { "nerdctl/name": "app" }),
  rec("default", "3f2b11"),
  rec("k8s.io", "aa11", {
    "io.kubernetes.pod.name": "web",
    "io.kubernetes.container.name": "api",
    "io.kubernetes.pod.namespace": "shop",
  }),
  rec("k8s.io", "bb22", {
    "io.kubernetes.pod.name": "web",
    "io.kubernetes.container.name": "api",
    "io.kubernetes.pod.namespace": "dev",
  }),
];

Deno.test("matchContainers() takes the full id or the nerdctl name first", () => {
  assert.deepEqual(matchContainers(all, "app").map((c) => c.id), ["3f2a9c"]);
  assert.deepEqual(matchContainers(all, "3f2b11").map((c) => c.id), ["3f2b11"]);
});

Deno.test("matchContainers() finds POD/CONTAINER by CRI labels, narrowed by pod namespace", () => {
  assert.equal(matchContainers(all, "web/api").length, 2);
  const shop = matchContainers(all, "web/api", { podNamespace: "shop" });
  assert.deepEqual(shop.map((c) => c.id), ["aa11"]);
});

Deno.test("matchContainers() falls back to id prefixes, which may be ambiguous", () => {
  assert.deepEqual(matchContainers(all, "3f2a").map((c) => c.id), ["3f2a9c"]);
  assert.equal(matchContainers(all, "3f2").length, 2);
  assert.equal(matchContainers(all, "zz").length, 0);
});

Deno.test("displayName() prefers pod/container, then the nerdctl name, then the id", () => {
  assert.equal(displayName(all[2]), "web/api");
  assert.equal(displayName(all[0]), "app");
  assert.equal(displayName(all[1]), "3f2b11");
});

Deno.test("factsOf() reads user, cwd, read-only root and namespaces from the OCI spec", () => {
  const c = {
    ...rec("default", "x"),
    spec: {
      process: { user: { uid: 1000, gid: 1000 }, cwd: "/app" },
      root: { readonly: true },
      linux: { namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "network" }] },
    },
  };
  const f = factsOf(c, 4242);
  assert.equal(f.user, "1000:1000");
  assert.equal(f.cwd, "/app");
  assert.equal(f.readOnlyRootfs, true);
  assert.equal(f.pid, 1);
  assert.equal(f.pidNamespace, "private");
  const host = factsOf({ ...c, spec: { linux: { namespaces: [] } } }, 4242);
  assert.equal(host.pid, 4242);
  assert.equal(host.ipc, "host");
  const shared = factsOf({
    ...c,
    spec: { linux: { namespaces: [{ type: "pid", path: "/proc/9/ns/pid" }] } },
  }, 4242);
  assert.equal(shared.pid, 0);
});

Deno.test("chainId() of one layer is its diff id, of more the image-spec hash chain", async () => {
  const { chainId } = await import("./image.ts");
  const a = "sha256:" + "a".repeat(64), b = "sha256:" + "b".repeat(64);
  assert.equal(await chainId([a]), a);
  const bytes = new TextEncoder().encode(`${a} ${b}`);
  const hex = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
    (x) => x.toString(16).padStart(2, "0"),
  ).join("");
  assert.equal(await chainId([a, b]), `sha256:${hex}`);
});

Deno.test("containerdName() normalises like containerd's image store", async () => {
  const { containerdName } = await import("./image.ts");
  assert.equal(containerdName("busybox:musl"), "docker.io/library/busybox:musl");
  assert.equal(containerdName("127.0.0.1:5000/tools/bb"), "127.0.0.1:5000/tools/bb:latest");
});
