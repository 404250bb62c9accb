import assert from "node:assert/strict";
import type * as k8s from "@kubernetes/client-node";
import { apiError } from "./api.ts";
import { ApiError } from "./rest.ts";
import { resolveImage } from "../../images/catalog.ts";
import { validateOptions } from "../../lib/options.ts";
import { makePlan } from "../../lib/plan.ts";
import { adapter } from "../k8s.ts";
import { entryMarks } from "./trailer.ts";
import type { OutputChunk } from "../../lib/adapter.ts";
import { ephemeralContainer, literal, securityContext, sessionRows } from "./spec.ts";
import { factsOf, labelSelector, parseTarget, pickContainer, pickPod } from "./target.ts";

const pod = (extra: Partial<k8s.V1Pod> = {}): k8s.V1Pod => ({
  metadata: { name: "web", annotations: {} },
  spec: { containers: [{ name: "api", image: "x" }, { name: "side", image: "y" }] },
  status: {
    phase: "Running",
    conditions: [{ type: "Ready", status: "True" }],
    containerStatuses: [{
      name: "api",
      containerID: "containerd://abc",
      image: "x",
      imageID: "",
      ready: true,
      restartCount: 0,
      state: { running: {} },
    }],
  },
  ...extra,
});

/** entryMarks() as a TransformStream. */
const marks = (...a: Parameters<typeof entryMarks>) =>
  new TransformStream<OutputChunk, OutputChunk>(entryMarks(...a));

const opts = (raw = {}, command: string[] = []) =>
  validateOptions({ runtime: "k8s", target: "web", command }, raw, {
    io: { stdinIsTerminal: false },
    supports: adapter.supports,
  });

Deno.test("parseTarget() reads POD[/C], pod/, deploy/ and sts/ forms", () => {
  assert.deepEqual(parseTarget("web"), { kind: "pod", name: "web", container: undefined });
  assert.deepEqual(parseTarget("web/api"), { kind: "pod", name: "web", container: "api" });
  assert.deepEqual(parseTarget("pod/web"), { kind: "pod", name: "web" });
  assert.deepEqual(parseTarget("pod/web/api"), { kind: "pod", name: "web", container: "api" });
  assert.deepEqual(parseTarget("deploy/web"), {
    kind: "deployment",
    name: "web",
    container: undefined,
  });
  assert.deepEqual(parseTarget("sts/db/pg"), { kind: "statefulset", name: "db", container: "pg" });
  assert.throws(() => parseTarget("a/b/c/d"), /Bad target/);
  assert.throws(() => parseTarget("web/"), /Bad target/);
});

Deno.test("pickContainer() follows the default-container annotation and lists on a miss", () => {
  assert.equal(pickContainer(pod()).name, "api");
  const annotated = pod({
    metadata: { name: "web", annotations: { "kubectl.kubernetes.io/default-container": "side" } },
  });
  assert.equal(pickContainer(annotated).name, "side");
  assert.throws(
    () => pickContainer(pod(), "nope"),
    /has no container "nope" \(it has: api, side\)/,
  );
});

Deno.test("pickPod() prefers the oldest ready pod and skips terminating ones", () => {
  const a = pod({ metadata: { name: "a", creationTimestamp: new Date(2000) } });
  const b = pod({ metadata: { name: "b", creationTimestamp: new Date(1000) } });
  const gone = pod({
    metadata: { name: "c", creationTimestamp: new Date(0), deletionTimestamp: new Date() },
  });
  assert.equal(pickPod([a, b, gone])?.metadata?.name, "b");
  assert.equal(pickPod([]), undefined);
});

Deno.test("factsOf() reads the container id, user, PID namespace and Pod Security level", () => {
  const f = factsOf(pod(), pod().spec!.containers[0], "restricted");
  assert.equal(f.id, "abc");
  assert.equal(f.pid, 1);
  assert.deepEqual(f.security, { psa: "restricted", runAsNonRoot: false });
  const shared = pod({
    spec: {
      shareProcessNamespace: true,
      securityContext: { runAsNonRoot: true, runAsUser: 1000 },
      containers: [{ name: "api", securityContext: { readOnlyRootFilesystem: true } }],
    },
  });
  const s = factsOf(shared, shared.spec!.containers[0]);
  assert.equal(s.pid, 0);
  assert.equal(s.pidNamespace, "shared");
  assert.equal(s.user, "1000:1000"); // no runAsGroup: assumed equal to the uid
  assert.equal(s.readOnlyRootfs, true);
  assert.deepEqual(s.security, { psa: "", runAsNonRoot: true });
});

Deno.test("profiles: auto follows Pod Security; runAsNonRoot forces plain mode as the target's uid", () => {
  const base = factsOf(pod(), pod().spec!.containers[0]);
  const general = makePlan(opts(), { ...base, user: "1000" }, resolveImage(undefined));
  assert.equal(general.sidecar.profile, "general");
  assert.deepEqual(general.sidecar.capAdd, ["SYS_PTRACE"]);
  const restricted = makePlan(
    opts(),
    { ...base, security: { psa: "restricted", runAsNonRoot: false } },
    resolveImage(undefined),
  );
  assert.equal(restricted.mode, "plain");
  assert.equal(restricted.sidecar.user, "65534");
  assert.deepEqual(securityContext(restricted), {
    runAsUser: 65534,
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  });
  const nonroot = makePlan(
    opts(),
    { ...base, user: "1000:1000", security: { psa: "", runAsNonRoot: true } },
    resolveImage(undefined),
  );
  assert.equal(nonroot.mode, "plain");
  assert.match(nonroot.modeReason, /runAsNonRoot/);
  assert.equal(nonroot.sidecar.user, "1000:1000");
  assert.deepEqual(nonroot.sidecar.capAdd, []);
  const net = makePlan(opts({ profile: "netadmin" }), base, resolveImage(undefined));
  assert.deepEqual(securityContext(net), {
    runAsUser: 0,
    capabilities: { add: ["SYS_PTRACE", "NET_ADMIN", "NET_RAW"] },
  });
  const sys = makePlan(opts({ profile: "sysadmin" }), base, resolveImage(undefined));
  assert.deepEqual(securityContext(sys), { runAsUser: 0, privileged: true });
});

Deno.test("ephemeralContainer() keeps $ literal, waits for dbg, and skips subPath mounts", () => {
  const base = factsOf(pod(), pod().spec!.containers[0]);
  const plan = makePlan(opts({}, ["sh", "-c", "echo $$ $(HOME)"]), base, resolveImage(undefined));
  const target: k8s.V1Container = {
    name: "api",
    volumeMounts: [{ name: "a", mountPath: "/data" }, {
      name: "b",
      mountPath: "/cfg",
      subPath: "x",
    }],
  };
  const { container, skippedMounts } = ephemeralContainer(plan, target);
  assert.equal(container.targetContainerName, "api");
  assert.equal(container.stdin, true);
  assert.equal(container.stdinOnce, true);
  assert.equal(container.imagePullPolicy, "IfNotPresent");
  assert.ok(container.command!.includes("echo $$$$ $$(HOME)"));
  assert.ok(container.env!.some((e) => e.name === "DBG_GO"));
  assert.deepEqual(container.volumeMounts, [{ name: "a", mountPath: "/data" }]);
  assert.deepEqual(skippedMounts, ["/cfg"]);
  assert.equal(literal("a$b"), "a$$b");
});

Deno.test("sessionRows() lists only dbg's ephemeral containers with their state", () => {
  const p = pod({
    spec: {
      containers: [{ name: "api" }],
      ephemeralContainers: [
        { name: "dbg-1", image: "busybox:musl", targetContainerName: "api" },
        { name: "debugger-x", image: "busybox" },
      ],
    },
    status: {
      ephemeralContainerStatuses: [{
        name: "dbg-1",
        image: "",
        imageID: "",
        ready: false,
        restartCount: 0,
        state: { terminated: { exitCode: 3 } },
      }],
    },
  });
  const rows = sessionRows(p);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].state, "exited (3)");
});

Deno.test("entryMarks() strips the entry script's exit code and passes the rest", async () => {
  let code: number | undefined;
  const enc = new TextEncoder();
  const out: string[] = [];
  await ReadableStream.from([
    { stream: 1 as const, data: enc.encode("hello\n") },
    { stream: 2 as const, data: enc.encode("oops\n\x1b]5379;dbg-exit=3\x07") },
  ]).pipeThrough(marks({ exit: (n) => (code = n), ready: () => {} })).pipeTo(
    new WritableStream({
      write: (c) => void out.push(`${c.stream}:${new TextDecoder().decode(c.data)}`),
    }),
  );
  assert.equal(code, 3);
  assert.deepEqual(out, ["1:hello\n", "2:oops\n"]);
});

Deno.test("entryMarks() finds a trailer cut at any byte between two chunks", async () => {
  const enc = new TextEncoder();
  const whole = "tail\x1b]5379;dbg-exit=42\x07";
  for (let cut = 1; cut < whole.length; cut++) {
    let code: number | undefined;
    let out = "";
    await ReadableStream.from([
      { stream: 2 as const, data: enc.encode(whole.slice(0, cut)) },
      { stream: 1 as const, data: enc.encode("x") },
      { stream: 2 as const, data: enc.encode(whole.slice(cut)) },
    ]).pipeThrough(marks({ exit: (n) => (code = n), ready: () => {} })).pipeTo(
      new WritableStream({
        write: (c) => void (out += c.stream === 2 ? new TextDecoder().decode(c.data) : ""),
      }),
    );
    assert.equal(code, 42, `cut at ${cut}`);
    assert.equal(out, "tail", `cut at ${cut}`);
  }
});

Deno.test("entryMarks() looks for marks at a big chunk's edges only", async () => {
  const enc = new TextEncoder();
  const ready = "\x1b]5379;dbg-ready\x07";
  const body = "x".repeat(1000);
  let seen = 0;
  let code: number | undefined;
  const out: string[] = [];
  await ReadableStream.from([
    { stream: 2 as const, data: enc.encode(`${ready}${body}`) },
    { stream: 2 as const, data: enc.encode(`${body}${ready}${body}`) },
    { stream: 2 as const, data: enc.encode(`${body}\x1b]5379;dbg-exit=4\x07`) },
  ]).pipeThrough(marks({ exit: (n) => (code = n), ready: () => seen++ })).pipeTo(
    new WritableStream({ write: (c) => void out.push(new TextDecoder().decode(c.data)) }),
  );
  assert.deepEqual(out, [body, `${body}${ready}${body}`, body]);
  assert.equal(seen, 1);
  assert.equal(code, 4);
});

Deno.test("entryMarks() holds back a lone escape only briefly, and passes other OSCs", async () => {
  const enc = new TextEncoder();
  const got: string[] = [];
  const { readable, writable } = marks({ exit: () => {}, ready: () => {} }, 20);
  const w = writable.getWriter();
  const reading = readable.pipeTo(
    new WritableStream({ write: (c) => void got.push(new TextDecoder().decode(c.data)) }),
  );
  await w.write({ stream: 1, data: enc.encode("a\x1b]53") });
  assert.deepEqual(got, ["a"]);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(got, ["a", "\x1b]53"]); // released by the timer
  await w.write({ stream: 1, data: enc.encode("\x1b]0;title\x07\x1b") });
  await w.close(); // the end releases what is held
  await reading;
  assert.deepEqual(got, ["a", "\x1b]53", "\x1b]0;title\x07", "\x1b"]);
});

Deno.test("labelSelector() writes matchLabels and matchExpressions in query syntax", () => {
  assert.equal(
    labelSelector({
      matchLabels: { app: "web" },
      matchExpressions: [
        { key: "tier", operator: "In", values: ["a", "b"] },
        { key: "canary", operator: "DoesNotExist" },
      ],
    }),
    "app=web,tier in (a,b),!canary",
  );
  assert.equal(labelSelector(undefined), "");
});

Deno.test("apiError(): a 404 on the subresource itself means no ephemeral containers", () => {
  // What a cluster without the subresource answers (no real engine here is that old).
  const missing = new ApiError(
    404,
    JSON.stringify({
      kind: "Status",
      status: "Failure",
      message: "the server could not find the requested resource",
      reason: "NotFound",
      details: {},
      code: 404,
    }),
  );
  const ctx = {
    verb: "patch",
    resource: "pods/ephemeralcontainers",
    name: "web",
    namespace: "shop",
  };
  const old = apiError(missing, ctx, "https://k");
  assert.equal(old.message, "This cluster does not support ephemeral containers");
  assert.match(old.hint ?? "", /dbg containerd/);
  const gone = new ApiError(
    404,
    JSON.stringify({
      message: 'pods "web" not found',
      reason: "NotFound",
      details: { name: "web", kind: "pods" },
      code: 404,
    }),
  );
  assert.equal(apiError(gone, ctx, "https://k").message, "No such pod: web in namespace shop");
});

Deno.test("entryMarks() strips every ready mark, reports each, and keeps any byte intact", async () => {
  let ready = 0;
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  const mark = new TextEncoder().encode("\x1b]5379;dbg-ready\x07");
  const chunks: Uint8Array[] = [];
  await ReadableStream.from([
    { stream: 2 as const, data: new Uint8Array([...mark, ...bytes, ...mark]) },
  ]).pipeThrough(marks({ exit: () => {}, ready: () => ready++ })).pipeTo(
    new WritableStream({ write: (c) => void chunks.push(c.data) }),
  );
  assert.equal(ready, 2);
  assert.deepEqual(new Uint8Array(chunks.flatMap((c) => [...c])), bytes);
});
