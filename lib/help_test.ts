import assert from "node:assert/strict";
import { parseArgs } from "./cli.ts";
import { completion } from "./help.ts";

const printed = (argv: string[]) => {
  const r = parseArgs(argv);
  assert.equal(r.kind, "print");
  return (r as { text: string }).text;
};

Deno.test("the help fits 80 columns, names each runtime's defaults, examples and exit codes", () => {
  for (const argv of [["help"], ["help", "docker"], ["help", "containerd"], ["k8s", "--help"]]) {
    const text = printed(argv);
    for (const line of text.split("\n")) assert.ok(line.length <= 80, `${argv}: ${line}`);
    assert.match(text, /^Exit codes:\n {2}N {6}the command's own exit code$/m, `${argv}`);
  }
  assert.match(printed(["help", "docker"]), /\$DOCKER_HOST, else the current docker context/);
  assert.match(printed(["help", "k8s"]), /^ {2}dbg k8s node\/worker-1 /m);
  assert.match(printed(["help", "containerd"]), /\$CONTAINERD_ADDRESS/);
  assert.match(printed(["help", "podman"]), /\$CONTAINER_HOST, else your rootless socket/);
  assert.equal(printed(["version"]), printed(["--version"]));
  assert.throws(() => parseArgs(["help", "lxc"]), /No help for 'lxc'/);
});

/** Runs `script` in `shell` and returns its stdout; undefined when the shell is missing. */
async function inShell(shell: string, script: string): Promise<string | undefined> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(shell, { args: ["-c", script], env: { HOME: "/tmp" } }).output();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    // scripts/test.sh installs every shell; a run elsewhere says what it skipped.
    if (Deno.env.get("CI") === "true") throw new Error(`${shell} is missing`);
    console.warn(`skipped: ${shell} is not installed`);
    return undefined;
  }
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test("dbg completion bash and zsh complete runtimes and a runtime's flags", async () => {
  for (const shell of ["bash", "zsh"] as const) {
    // COMP_WORDS counts from 0 in bash and from 1 in zsh; COMP_CWORD is the same in both.
    const complete = (words: string[]) =>
      inShell(
        shell,
        `${completion(shell)}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}
_dbg dbg '${words.at(-1)}' '${words.at(-2)}'; echo "\${COMPREPLY[*]}"`,
      );
    const image = await complete(["dbg", "docker", "--im"]);
    if (image === undefined) continue;
    // bash filters by the word itself; zsh's completion system filters what it is given.
    if (shell === "bash") {
      assert.equal(image, "--image");
      assert.equal(await complete(["dbg", "k8s", "--kubec"]), "--kubeconfig");
      assert.equal(await complete(["dbg", "cont"]), "containerd");
      assert.equal(await complete(["dbg", "completion", "f"]), "fish");
    } else {
      assert.ok(image.split(" ").includes("--image"), image);
      assert.ok(!image.split(" ").includes("--kubeconfig"), "docker's flags, not k8s's");
    }
  }
});

Deno.test("dbg completion fish completes runtimes and a runtime's flags", async () => {
  const file = await Deno.makeTempFile({ suffix: ".fish" });
  try {
    await Deno.writeTextFile(file, completion("fish"));
    const complete = (line: string) => inShell("fish", `source ${file}; complete -C '${line}'`);
    const image = await complete("dbg docker --im");
    if (image === undefined) return;
    assert.match(image, /^--image\tdebugger image/);
    assert.match((await complete("dbg cont"))!, /^containerd\t/);
  } finally {
    await Deno.remove(file);
  }
});
