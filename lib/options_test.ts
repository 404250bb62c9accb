import assert from "node:assert/strict";
import { DbgError } from "./errors.ts";
import { validateOptions } from "./options.ts";

const supports = {
  keep: true,
  privileged: true,
  name: true,
  images: true,
  copy: true,
  attach: true,
};
const base = { runtime: "docker", target: "app", command: [] as string[] };
const tty = { io: { stdinIsTerminal: true }, supports };
const pipe = { io: { stdinIsTerminal: false }, supports };

Deno.test("validateOptions() allocates a TTY only when stdin is a terminal", () => {
  assert.equal(validateOptions(base, {}, tty).tty, true);
  assert.equal(validateOptions(base, {}, pipe).tty, false);
  assert.equal(validateOptions(base, { tty: false }, tty).tty, false);
  const redirected = { io: { stdinIsTerminal: true, stdoutIsTerminal: false }, supports };
  assert.equal(validateOptions(base, {}, redirected).tty, false);
  assert.equal(validateOptions(base, { tty: true }, redirected).tty, true);
});

Deno.test("validateOptions() connects stdin for -i, a TTY, or a shell without a command", () => {
  const cmd = { ...base, command: ["ls"] };
  assert.equal(validateOptions(cmd, {}, pipe).stdin, false);
  assert.equal(validateOptions(cmd, { interactive: true }, pipe).stdin, true);
  assert.equal(validateOptions(base, {}, pipe).stdin, true);
  assert.equal(validateOptions(cmd, {}, tty).stdin, false);
  assert.equal(validateOptions(cmd, { tty: true }, tty).stdin, true);
});

Deno.test("validateOptions() gives a TTY as docker does: -t, or a shell at a terminal", () => {
  const cmd = { ...base, command: ["ls"] };
  type Ctx = Parameters<typeof validateOptions>[2];
  const combos: Array<[typeof base, object, Ctx, boolean]> = [
    [base, {}, tty, true],
    [base, {}, pipe, false],
    [base, { tty: false }, tty, false],
    [base, { interactive: true }, tty, true],
    [base, {}, { ...tty, io: { stdinIsTerminal: true, stdoutIsTerminal: false } }, false],
    [cmd, {}, tty, false],
    [cmd, { interactive: true }, tty, false],
    [cmd, { tty: true }, tty, true],
    [cmd, { interactive: true }, pipe, false],
  ];
  for (const [b, raw, ctx, want] of combos) {
    assert.equal(validateOptions(b, raw, ctx).tty, want, JSON.stringify([b.command, raw, ctx.io]));
  }
});

Deno.test("validateOptions() takes -e NAME from this process's environment, as docker", () => {
  const env = (n: string) => n === "TOKEN" ? "s3" : undefined;
  const opts = validateOptions(base, { env: ["TOKEN", "UNSET", "A=1"] }, { ...pipe, env });
  assert.deepEqual(opts.env, ["TOKEN=s3", "A=1"]);
});

Deno.test("validateOptions() rejects -t without a terminal, with a hint", () => {
  assert.throws(() => validateOptions(base, { tty: true }, pipe), (e: DbgError) => {
    assert.match(e.message, /not a TTY/);
    assert.match(e.hint!, /-i/);
    assert.equal(e.exitCode, 125);
    return true;
  });
});

Deno.test("validateOptions() rejects bad values and names the flag", () => {
  const bad: Array<[object, RegExp]> = [
    [{ pull: "sometimes" }, /Bad --pull "sometimes"/],
    [{ mode: "magic" }, /Bad --mode "magic"/],
    [{ env: ["1BAD"] }, /Bad --env "1BAD"/],
    [{ image: "Busybox:MUSL" }, /repository name must be lowercase/],
    [{ env: ["_dbg_n=0"] }, /_dbg_ names are dbg's own/],
    [{ user: "a b" }, /Bad --user/],
    [{ workdir: "relative" }, /absolute path/],
    [{ name: "-x" }, /Bad --name/],
    [{ image: "nix:" }, /Bad nix image/],
  ];
  for (const [raw, re] of bad) {
    assert.throws(() => validateOptions(base, raw, pipe), re);
  }
});

Deno.test("validateOptions() turns down a flag the runtime does not support", () => {
  const limited = { io: { stdinIsTerminal: false }, supports: { ...supports, keep: false } };
  assert.throws(
    () => validateOptions({ ...base, runtime: "k8s" }, { keep: true }, limited),
    /--keep is not supported for the k8s runtime/,
  );
});

Deno.test("validateOptions() reads image:REF as an image target, where the runtime has them", () => {
  const image = { ...base, target: "image:ghcr.io/acme/web:1.2" };
  assert.equal(validateOptions(image, {}, pipe).fromImage, "ghcr.io/acme/web:1.2");
  assert.equal(validateOptions(base, {}, pipe).fromImage, undefined);
  assert.throws(() => validateOptions({ ...base, target: "image:" }, {}, pipe), /Bad image target/);
  const k8s = { io: { stdinIsTerminal: false }, supports: { ...supports, images: false } };
  assert.throws(
    () => validateOptions({ ...image, runtime: "k8s" }, {}, k8s),
    /dbg k8s cannot debug an image/,
  );
});
