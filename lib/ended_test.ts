import assert from "node:assert/strict";
import { endedText } from "./ended.ts";

Deno.test("endedText() says the exit code, how long ago, and why", () => {
  const now = Date.parse("2026-12-02T12:00:00Z");
  assert.equal(
    endedText({ code: 1, at: "2026-12-02T11:55:00Z", reason: "OOMKilled" }, now),
    "exited with code 1 5 minutes ago (OOMKilled)",
  );
  assert.equal(
    endedText({ code: 0, at: "2026-12-02T11:59:59Z" }, now),
    "exited with code 0 1 second ago",
  );
  assert.equal(
    endedText({ code: 2, at: "2026-11-30T12:00:00Z" }, now),
    "exited with code 2 2 days ago",
  );
  // Go's zero time and an unknown code are left out.
  assert.equal(endedText({ at: "0001-01-01T00:00:00Z" }, now), "exited");
});
