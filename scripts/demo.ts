/**
 * `deno task demo`: a new user's first try of dbg. It finds the user's Docker (or, as root with
 * /usr/sbin/dockerd and no daemon around, starts a private one), builds a shell-less target
 * image (`dbg-demo/target`, one `gcc -static` program, no /bin/sh), makes sure busybox:musl is
 * there, runs the target with `--network none` and attaches `dbg docker <target>` to the user's
 * terminal. Without a terminal it runs `ls /; cat /etc/os-release` instead, so it works in CI.
 * The target (and the private dockerd) are removed on every path, Ctrl-C included. Exits with
 * dbg's exit code, 125 when the demo itself cannot run, 130 when interrupted.
 *
 * @module
 */

import {
  cleanEnv,
  DOCKER,
  DOCKERD,
  exists,
  type PrivateDockerd,
  type ShResult,
  startDockerd,
} from "../tests/helpers/dockerd.ts";
import {
  buildBusyboxImage,
  buildTargetImage,
  type DockerCli,
  FIXTURES,
  hasGcc,
  hasImage,
  hasStaticBusybox,
  HOST_BUSYBOX,
  which,
} from "./_images.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const DEMO_TARGET = "dbg-demo/target";
const DEBUG_IMAGE = "busybox:musl"; // dbg's default (see `dbg images`)
const OS_RELEASE =
  'ID=dbgdemo\nPRETTY_NAME="dbg demo target (one gcc -static program, no shell)"\n';
const BATCH_CMD = "ls /; cat /etc/os-release";
const INPUTS_LABEL = "dbg.demo.inputs";
const SELF_IMAGES = new URL("./_images.ts", import.meta.url);
const NO_CHECK = { check: false };

/** A failure of the demo itself: one line plus a hint; exit code 125. */
class DemoError extends Error {
  constructor(message: string, readonly hint: string) {
    super(message);
  }
}

/** Prints a status line; never throws, as the terminal may be gone (SIGHUP) during cleanup. */
function say(s: string): void {
  const buf = new TextEncoder().encode(`demo: ${s}\n`);
  ignoreErrors(() => {
    for (let off = 0; off < buf.length;) off += Deno.stderr.writeSync(buf.subarray(off));
  });
}
const interrupt = new AbortController();

/** How to reach one daemon with a docker CLI. */
interface Engine {
  /** Program and leading args, e.g. `["/usr/bin/docker", "-H", "unix:///…"]`. */
  base: string[];
  /** Full environment for the CLI and for dbg. */
  env: Record<string, string>;
  /** `-H` value for dbg, when dbg would not find the daemon on its own. */
  host?: string;
  /** The private dockerd this demo started, if any. */
  own?: PrivateDockerd;
}

/** A docker CLI for `e`; commands are killed when `signal` fires. */
function dockerCli(e: Engine, signal: AbortSignal): DockerCli {
  return async (args, opts = {}) => {
    const [program, ...pre] = e.base;
    const out = await new Deno.Command(program, {
      args: [...pre, ...args],
      env: e.env,
      clearEnv: true,
      stdin: "null",
      signal,
    }).output();
    const timedOut = signal.aborted && signal.reason?.name === "TimeoutError";
    if (signal.aborted && !timedOut) throw new Error("interrupted");
    const dec = new TextDecoder();
    const res: ShResult = {
      code: exitCode(out),
      stdout: dec.decode(out.stdout),
      stderr: timedOut ? `timed out: docker ${args.join(" ")}` : dec.decode(out.stderr),
    };
    if ((opts.check ?? true) && res.code !== 0) {
      throw new Error(`docker ${args[0]} failed: ${firstLine(res.stderr)}`);
    }
    return res;
  };
}

/** The exit code, or 128 + n when killed by signal n (the shell's convention). */
function exitCode(s: Deno.CommandStatus): number {
  const n: Partial<Record<Deno.Signal, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return s.signal ? 128 + (n[s.signal] ?? 0) : s.code;
}

function ignoreErrors(fn: () => void): void {
  try {
    fn();
  } catch {
    // e.g. the process has already exited
  }
}

function firstLine(s: string): string {
  return s.split("\n").map((l) => l.trim()).find(Boolean) ?? "(no output)";
}

/** The user's Docker when a daemon answers, else a private dockerd (root only), else an error. */
async function findEngine(): Promise<Engine> {
  const env = Deno.env.toObject();
  const cliPath = await which("docker");
  let why = "no docker CLI on PATH";
  if (cliPath) {
    const user: Engine = { base: [cliPath], env };
    const probe = dockerCli(user, AbortSignal.any([interrupt.signal, AbortSignal.timeout(10_000)]));
    const v = await probe(["version", "--format", "{{.Server.Version}}"], NO_CHECK);
    const ctx = await probe(["context", "inspect", "-f", "{{.Endpoints.docker.Host}}"], NO_CHECK);
    const where = env.DOCKER_HOST || ctx.stdout.trim() || "unix:///var/run/docker.sock";
    if (v.code === 0) {
      say(`using your Docker ${v.stdout.trim()} at ${where}`);
      return user;
    }
    why = `Cannot reach Docker at ${where}: ${firstLine(v.stderr)}`;
    if (/permission denied/i.test(v.stderr)) {
      throw new DemoError(
        why,
        "Add yourself to the docker group (sudo usermod -aG docker $USER, then log in again) or run with sudo",
      );
    }
  }
  if (Deno.uid() !== 0 || !await exists(DOCKERD) || !await exists(DOCKER)) {
    const need = Deno.uid() !== 0 ? "root" : `${DOCKERD} and ${DOCKER} (apt-get install docker.io)`;
    throw new DemoError(
      why,
      `Start Docker (sudo systemctl start docker) or set DOCKER_HOST; a private daemon needs ${need}`,
    );
  }
  if (!await hasGcc()) throw gccMissing(); // a new daemon has no target image to fall back on
  say(why);
  say(`starting a private dockerd for this demo (it is stopped and deleted at the end)`);
  const d = await startDockerd();
  say(`private dockerd ready at ${d.host} (storage driver ${d.storageDriver})`);
  const privateEnv = cleanEnv({ DOCKER_CONFIG: `${d.dir}/config` });
  return { base: [DOCKER, "-H", d.host], env: privateEnv, host: d.host, own: d };
}

/** Hash of what dbg-demo/target is made of, kept as a label to skip needless rebuilds. */
async function targetInputs(): Promise<string> {
  const files = [new URL("target.c", FIXTURES), new URL("hello.c", FIXTURES), SELF_IMAGES];
  const srcs = await Promise.all(files.map((f) => Deno.readTextFile(f)));
  const data = new TextEncoder().encode([...srcs, OS_RELEASE].join("\0"));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Builds dbg-demo/target unless an up-to-date one exists (or gcc is missing and any exists). */
async function ensureTarget(docker: DockerCli): Promise<void> {
  const inputs = await targetInputs();
  const format = `{{.Id}} {{with .Config.Labels}}{{index . "${INPUTS_LABEL}"}}{{end}}`;
  const old = await docker(["image", "inspect", "-f", format, DEMO_TARGET], NO_CHECK);
  const [oldId, oldInputs] = old.code === 0 ? old.stdout.trim().split(" ") : [];
  if (oldInputs === inputs) {
    say(`target image ${DEMO_TARGET}: up to date`);
  } else if (await hasGcc()) {
    say(`building ${DEMO_TARGET}: a static C program (gcc -static), no shell, no package manager`);
    const labels = { [INPUTS_LABEL]: inputs };
    await buildTargetImage(docker, { ref: DEMO_TARGET, osRelease: OS_RELEASE, labels });
    if (oldId) await docker(["rmi", oldId], NO_CHECK); // the outdated one, now untagged
  } else if (oldId) {
    say(`gcc not found: reusing the existing ${DEMO_TARGET} image`);
  } else {
    throw gccMissing();
  }
}

function gccMissing(): DemoError {
  return new DemoError(
    `gcc not found: cannot build the demo's target image ${DEMO_TARGET}`,
    "Install a C compiler with a static libc (Debian/Ubuntu: apt-get install gcc libc6-dev)",
  );
}

/** Makes sure busybox:musl is there: local, pulled, or built from Debian's static busybox. */
async function ensureDebugImage(docker: DockerCli): Promise<void> {
  if (await hasImage(docker, DEBUG_IMAGE)) {
    say(`debugger image ${DEBUG_IMAGE}: found locally`);
    return;
  }
  say(`pulling ${DEBUG_IMAGE} (dbg's default debugger image, ~1 MB)…`);
  const pull = await docker(["pull", "-q", DEBUG_IMAGE], NO_CHECK);
  if (pull.code === 0) return;
  const why = firstLine(pull.stderr);
  if (!await hasStaticBusybox()) {
    throw new DemoError(
      `Cannot get ${DEBUG_IMAGE}: ${why}`,
      `Check registry access (docker pull ${DEBUG_IMAGE}), or install Debian's busybox-static so the demo can build a stand-in`,
    );
  }
  say(`pull failed (${why})`);
  say(`building a local stand-in ${DEBUG_IMAGE} from ${HOST_BUSYBOX} (static), as the tests do`);
  await buildBusyboxImage(docker, DEBUG_IMAGE);
  say(`(it stays in your image store; remove it with: docker rmi ${DEBUG_IMAGE})`);
}

/** Runs the target detached and waits until it says "target started". */
async function runTarget(docker: DockerCli, name: string): Promise<void> {
  await docker(["run", "-d", "--network", "none", "--name", name, DEMO_TARGET]);
  for (let i = 0; i < 100; i++) {
    if ((await docker(["logs", name], NO_CHECK)).stdout.includes("target started")) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new DemoError(`Target ${name} did not start`, `See: docker logs ${name}`);
}

/** Shows why a debugger is needed: the target has no shell to exec. */
async function showNoShell(docker: DockerCli, name: string): Promise<void> {
  const ex = await docker(["exec", name, "sh", "-c", "true"], NO_CHECK);
  const what = ex.code === 0 ? "works?!" : `fails: ${firstLine(ex.stderr || ex.stdout)}`;
  say(`target ${name} is up; \`docker exec ${name} sh\` ${what}`);
}

/** Runs dbg with the user's terminal; returns its exit code. */
async function runDbg(e: Engine, name: string, tty: boolean): Promise<number> {
  const args = ["docker", ...(e.host ? ["-H", e.host] : []), name];
  if (!tty) args.push("--", "sh", "-c", BATCH_CMD);
  const shown = args.map((a) => (/[\s;']/.test(a) ? `'${a}'` : a)).join(" ");
  say(`now running: deno run -A main.ts ${shown}`);
  say("dbg starts a sidecar that joins the target's PID, network and IPC namespaces,");
  say("shows the target's files as / and puts busybox tools on PATH.");
  say(
    tty
      ? "Try: ls /, ps, cat /etc/os-release, /usr/bin/hello. Leave with: exit"
      : "stdin is not a terminal, so dbg runs one command instead of a shell",
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: e.env,
    clearEnv: true,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  // dbg gets a terminal's Ctrl-C itself; if it still runs 2s after ours, SIGTERM it (dbg then
  // removes its sidecar and exits 143).
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => child.kill("SIGTERM");
  const onAbort = () => (timer = setTimeout(() => ignoreErrors(stop), 2000));
  interrupt.signal.addEventListener("abort", onAbort);
  const status = await child.status;
  interrupt.signal.removeEventListener("abort", onAbort);
  clearTimeout(timer);
  return exitCode(status);
}

async function main(): Promise<number> {
  const onSignal = () => {
    if (!interrupt.signal.aborted) say("interrupted: cleaning up");
    interrupt.abort();
  };
  // SIGHUP too: closing the terminal (or `tmux kill-session`) must not leak the target.
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const sig of signals) Deno.addSignalListener(sig, onSignal);
  let engine: Engine | null = null;
  let target: string | null = null;
  let code = 125;
  try {
    engine = await findEngine();
    const docker = dockerCli(engine, interrupt.signal);
    await ensureTarget(docker);
    await ensureDebugImage(docker);
    target = `dbg-demo-${crypto.randomUUID().slice(0, 8)}`;
    say(`starting target ${target} (--network none)`);
    await runTarget(docker, target);
    await showNoShell(docker, target);
    code = await runDbg(engine, target, Deno.stdin.isTerminal());
    if (interrupt.signal.aborted && code === 0) code = 130;
  } catch (e) {
    if (interrupt.signal.aborted) code = 130;
    else if (e instanceof DemoError) say(`${e.message}\nHint: ${e.hint}`);
    else say(e instanceof Error ? e.message : String(e));
  } finally {
    const cleanup = engine && dockerCli(engine, AbortSignal.timeout(30_000));
    if (cleanup && target) {
      const rm = await cleanup(["rm", "-f", target], NO_CHECK).catch(() => null);
      if (rm?.code === 0) say(`removed target ${target}`);
      else if (!engine?.own) say(`could not remove target ${target}: docker rm -f ${target}`);
    }
    if (engine?.own) {
      await engine.own.stop(); // a terminal's Ctrl-C reaches it too; stop() copes with that
      say("stopped and deleted the private dockerd (and everything in it)");
    }
    for (const sig of signals) Deno.removeSignalListener(sig, onSignal);
  }
  return code;
}

if (import.meta.main) Deno.exit(await main());
