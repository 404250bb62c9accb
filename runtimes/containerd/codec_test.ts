import assert from "node:assert/strict";
import { compile } from "./codec.ts";
import { method } from "./proto.ts";

const TASKS = "containerd.services.tasks.v1.Tasks";

// The bytes protobufjs 7.6.6 wrote for the same messages with the same descriptors.
Deno.test("codec: a Tasks.Create request encodes as protobufjs wrote it", () => {
  const create = method(TASKS, "Create").encode({
    container_id: "x",
    rootfs: [{ type: "overlay", source: "o", options: ["a", "b"] }],
    stdin: "/i",
    terminal: true,
  });
  assert.deepEqual(
    Array.from(create),
    [10, 1, 120, 26, 18, 10, 7, 111, 118, 101, 114, 108, 97, 121, 18, 1, 111, 34, 1, 97, 34, 1, 98]
      .concat([34, 2, 47, 105, 56, 1]),
  );
});

Deno.test("codec: a Tasks.Get answer decodes with defaults, enum names and numbers", () => {
  const got = method(TASKS, "Get").decode(
    Uint8Array.from([10, 20, 10, 1, 120, 24, 146, 33, 32, 2, 72, 0, 82, 8, 8, 128, 226, 207, 170]
      .concat([6, 16, 5])),
  );
  assert.deepEqual(got, {
    process: {
      container_id: "x",
      id: "",
      pid: 4242,
      status: "RUNNING",
      terminal: false,
      exit_status: 0,
      exited_at: { seconds: 1700000000, nanos: 5 },
    },
  });
});

Deno.test("codec: maps, negative numbers, nested types and unknown fields", () => {
  const c = compile({
    nested: {
      p: {
        nested: {
          M: {
            fields: {
              labels: { keyType: "string", type: "string", id: 1 },
              n: { type: "int32", id: 2 },
              big: { type: "int64", id: 3 },
              inner: { type: "Inner", id: 4 },
            },
            nested: { Inner: { fields: { s: { type: "string", id: 1 } } } },
          },
          Old: { fields: { n: { type: "int32", id: 2 } } },
        },
      },
    },
  });
  const m = { labels: { a: "1", b: "" }, n: -5, big: 2 ** 40, inner: { s: "é" } };
  const bytes = c.encode("p.M", m);
  assert.deepEqual(c.decode("p.M", bytes), m);
  assert.deepEqual(c.decode("p.Old", bytes), { n: -5 }); // fields it does not know are skipped
  assert.throws(() => c.decode("p.M", bytes.subarray(0, bytes.length - 1)), /truncated/);
});
