import assert from "node:assert/strict";
import { endedText } from "./ended.ts";
import { DbgError, formatError } from "./errors.ts";
import { printable, printableLines } from "./printable.ts";

Deno.test("printable() keeps an engine's or a target's text off the terminal's controls", () => {
  assert.equal(printable("bad\x1b]0;owned\x07thing\r\n"), "bad ]0;owned thing");
  assert.equal(printableLines("dbg: a\x1b[2J\nHint: b\x9b1m"), "dbg: a [2J\nHint: b 1m");
  assert.equal(endedText({ code: 1, reason: "x\x1b[2Jy" }), "exited with code 1 (x [2Jy)");
});

Deno.test("formatError() prints a message and a hint from outside as one plain line each", () => {
  const e = new DbgError("Cannot pull x: registry says \x1b]0;pwned\x07\nno", {
    hint: "try \x1b[31mred",
  });
  assert.equal(
    formatError(e, false),
    "dbg: Cannot pull x: registry says  ]0;pwned no\nHint: try  [31mred",
  );
  assert.ok(!formatError(new Error("a\x1bb"), false).includes("\x1b"));
});
