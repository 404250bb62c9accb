import assert from "node:assert/strict";
import type { SessionPart } from "./adapter.ts";
import { age, garbage, gcLine, sessionsTable, SETUP_GRACE_MS } from "./gc.ts";

const now = 10_000_000;
const part = (o: Partial<SessionPart>): SessionPart => ({
  session: "s",
  kind: "sidecar",
  name: `dbg-${o.session ?? "s"}`,
  ref: "x",
  target: "app",
  created: now - 5 * 60_000,
  state: "running",
  ...o,
});

Deno.test("garbage(): ended sessions go whole; held, unknown and new ones stay", () => {
  const held = part({ session: "held", attached: true });
  const unknown = part({ session: "unknown" }); // containerd: no lifeline to tell
  const orphan = part({ session: "orphan", attached: false });
  const orphanCopy = part({ session: "orphan", kind: "copy", name: "dbg-orphan-copy" });
  const ended = part({ session: "ended", state: "exited" });
  const starting = part({ session: "new", state: "created", created: now - 1000 });
  const old = part({ session: "old", state: "created", created: now - SETUP_GRACE_MS - 1 });
  const justEnded = part({ session: "fast", state: "exited", created: now - 1000 });
  const heldsImage = part({ session: "held", kind: "rest", name: "image dbg-copy:held" });
  const all = [held, unknown, orphan, orphanCopy, ended, starting, old, justEnded, heldsImage];
  assert.deepEqual(garbage(all, now), [orphan, orphanCopy, ended, old, justEnded]);
});

Deno.test("garbage(): a Kubernetes pod goes once its session has ended, not while it starts", () => {
  const pod = (o: Partial<SessionPart>) => part({ kind: "pod", created: now - 5000, ...o });
  const starting = pod({ session: "a", attached: false });
  const held = pod({ session: "b", attached: true });
  const over = pod({ session: "c", state: "ended", attached: false });
  assert.deepEqual(garbage([starting, held, over], now), [over]);
});

Deno.test("sessionsTable() shows sidecars and copies newest first, and gcLine() one part", () => {
  const parts = [
    { ...part({ session: "a", attached: true }), runtime: "docker" },
    { ...part({ session: "b", created: now - 3000, state: "exited" }), runtime: "podman" },
    {
      ...part({ session: "c", kind: "rest", name: "lease x", target: "", state: "unused" }),
      runtime: "containerd",
    },
    { ...part({ session: "d", target: "evil\x1b[2J" }), runtime: "containerd" },
  ];
  assert.equal(
    sessionsTable(parts, now),
    [
      "RUNTIME     NAME   KIND     TARGET    AGE  STATE    ATTACHED",
      "podman      dbg-b  sidecar  app       3s   exited   -",
      "docker      dbg-a  sidecar  app       5m   running  yes",
      "containerd  dbg-d  sidecar  evil [2J  5m   running  ?",
    ].join("\n"),
  );
  assert.equal(sessionsTable([], now), "No dbg sessions.");
  assert.equal(
    gcLine(parts[1], true, now),
    "would remove podman sidecar dbg-b of app (exited, 3s old)",
  );
  assert.equal(gcLine(parts[2], false, now), "removed containerd lease x (unused, 5m old)");
});

Deno.test("age() reads like docker ps", () => {
  assert.deepEqual([0, 119_000, 120_000, 7_200_000, 172_800_000].map(age), [
    "0s",
    "119s",
    "2m",
    "2h",
    "2d",
  ]);
});
