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
  assert.equal(printed(["version"]), printed(["--version"]));
  assert.throws(() => parseArgs(["help", "podman"]), /No help for 'podman'/);
});

Deno.test("bash completes runtimes, flags and words from dbg completion bash", async () => {
  const complete = async (line: string) => {
    const words = line.split(" ");
    const script = `${completion("bash")}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}
_dbg; echo "\${COMPREPLY[*]}"`;
    const out = await new Deno.Command("bash", { args: ["-c", script] }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout).trim();
  };
  assert.equal(await complete("dbg docker --im"), "--image");
  assert.equal(await complete("dbg k8s --kubec"), "--kubeconfig");
  assert.equal(await complete("dbg cont"), "containerd");
  assert.equal(await complete("dbg completion f"), "fish");
  assert.match(completion("zsh"), /^autoload -U \+X bashcompinit && bashcompinit$/m);
  assert.match(
    completion("fish"),
    /^complete -c dbg -n '__fish_seen_subcommand_from docker' -l image -r /m,
  );
});
