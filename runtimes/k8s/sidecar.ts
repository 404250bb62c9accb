/**
 * The sidecar on Kubernetes: an ephemeral container in the target's pod.
 *
 * Kubernetes starts an ephemeral container as soon as it is added, so nobody can attach before
 * it starts. The lifecycle's order still holds: creating the sidecar adds the container, whose
 * entry script then waits for a go line (lib/entry.sh); `attach()` hands out streams at once and
 * binds them to the WebSocket in `start()`, which waits until the container runs, attaches, and
 * sends the go line, so that no output is lost. A container that ended before the attach (an early failure) is read from its log.
 *
 * Ephemeral containers can be neither signalled nor deleted through the API. dbg signals the
 * entry shell with a short `exec` into the container, and on an unclean end makes sure that
 * nothing of the session keeps running; the finished container stays in the pod's spec.
 *
 * @module
 */

import type * as k8s from "@kubernetes/client-node";
import type { Attachment, Lifeline, OutputChunk, Sidecar } from "../../lib/adapter.ts";
import { DbgError, LeftBehind } from "../../lib/errors.ts";
import type { DebugPlan } from "../../lib/plan.ts";
import { delay } from "../../lib/signals.ts";
import { hangupScript, killScript, LIFELINE_QUIT } from "../../lib/kill.ts";
import { canI, type Kube } from "./api.ts";
import { ChannelSocket, refusal, STDIN, type StreamStatus, unreachableNode } from "./channel.ts";
import { openLifeline, runScript } from "./exec.ts";
import { GO_TIMEOUT_S } from "./spec.ts";
import { entryMarks, type OutputFilter } from "./trailer.ts";
import { containerState, errText, stateWithin, waitForContainer } from "./wait.ts";
import { consoleSize } from "../../lib/resize.ts";

/** What the sidecar needs besides the plan. */
export interface K8sSidecarOptions {
  kube: Kube;
  namespace: string;
  pod: string;
  /** The container to add; undefined to reattach to `plan.sidecar.existing`. */
  container?: k8s.V1EphemeralContainer;
  timeoutMs: number;
  debug: (msg: string) => void;
  /** One-line notices for the user (waiting reasons), unless -q. */
  notice: (msg: string) => void;
}

/**
 * How long dbg waits for the entry script's ready mark before it goes on anyway (a shell without
 * `read -t` sends it only once).
 */
const READY_WAIT_MS = 3000;

/** The state of one ephemeral container in a pod's status. */
const ecState = (pod: k8s.V1Pod, name: string) => containerState(pod, name, true);

/** The dbg container of one session. */
export class K8sSidecar implements Sidecar {
  readonly id: string;
  readonly name: string;
  readonly removesItself = true;
  /** The kubelet reports an exit in its status a second or two after it happens. */
  readonly exitLagMs = 2500;
  #o: K8sSidecarOptions;
  #plan: DebugPlan;
  #socket?: ChannelSocket;
  #bound = Promise.withResolvers<ChannelSocket | null>();
  /** Where the output comes from: the attach, or the log of a container that had ended. */
  #source = Promise.withResolvers<ReadableStream<OutputChunk> | null>();
  #exit = Promise.withResolvers<number>();
  #closed = false;
  #rv?: string;
  /** The entry script got its go line (before that it ends by itself after GO_TIMEOUT_S). */
  #went = false;
  /** The attach broke while the session went on: left running for a reattach. */
  #detached = false;
  /** The lifeline opened with a new session (see start()), and whether the session took it. */
  #lifeline?: Promise<Lifeline>;
  #lifelineTaken = false;

  constructor(plan: DebugPlan, o: K8sSidecarOptions) {
    this.#plan = plan;
    this.#o = o;
    this.name = o.container?.name ?? plan.sidecar.existing ?? plan.sidecar.name;
    this.id = `${o.namespace}/${o.pod}/${this.name}`;
    this.#exit.promise.catch(() => {});
    this.#bound.promise.catch(() => {});
  }

  attach(): Promise<Attachment> {
    const bound = this.#bound.promise;
    // Each read of the session's is one read of the source: a chunk is valid until the next.
    let reader: ReadableStreamDefaultReader<OutputChunk> | undefined;
    const output = new ReadableStream<OutputChunk>({
      pull: async (ctl) => {
        reader ??= (await this.#source.promise)?.getReader();
        const r = await reader?.read();
        if (!r || r.done) ctl.close();
        else ctl.enqueue(r.value);
      },
      cancel: (why) => reader?.cancel(why),
    }, { highWaterMark: 0 });
    return Promise.resolve({
      output,
      write: async (data: Uint8Array) => {
        const socket = await bound;
        socket?.send(STDIN, data);
        await socket?.drained();
      },
      closeWrite: async () => {
        (await bound)?.closeStdin();
      },
      close: () => {
        this.#closed = true;
        this.#bound.resolve(null);
        this.#source.resolve(null);
        this.#socket?.close();
        // A lifeline the session never took (it ended first) is let go without a hangup.
        if (!this.#lifelineTaken) {
          this.#lifeline?.then((l) =>
            l.write(new TextEncoder().encode(LIFELINE_QUIT)).finally(() => l.close())
          ).catch(() => {});
        }
      },
    });
  }

  beginWait(): Promise<{ exit: Promise<number> }> {
    return Promise.resolve({ exit: this.#exit.promise });
  }

  /**
   * Add the ephemeral container to the pod (a strategic-merge PATCH of the subresource). It
   * starts at once, and its entry script waits for the go line that `start()` sends.
   */
  async add(): Promise<void> {
    const { kube, namespace, pod, container } = this.#o;
    if (!container) return;
    const body = { spec: { ephemeralContainers: [container] } };
    const patched = await kube.call(
      { verb: "patch", resource: "pods/ephemeralcontainers", name: pod, namespace },
      () => kube.core.patchNamespacedPodEphemeralcontainers({ name: pod, namespace, body }),
    );
    this.#rv = patched.metadata?.resourceVersion;
    this.#o.debug(`added ephemeral container ${this.name} to pod ${pod}`);
  }

  async start(stop?: AbortSignal): Promise<void> {
    const rv = this.#rv;
    const { kube, namespace, pod, timeoutMs, debug, notice } = this.#o;
    // The attach and the lifeline get connections made while the container starts.
    kube.prepareConnections(this.#o.container ? 2 : 1).catch(() => {});
    const state = await waitForContainer(kube, {
      namespace,
      pod,
      name: this.name,
      ephemeral: true,
      rv,
      timeoutMs,
      stop,
      debug,
      notice,
    });
    if (this.#closed) return; // the session was stopped meanwhile
    if (state.terminated) {
      // Ended before anyone could attach: its log holds the output.
      this.#o.debug(`${this.name} already terminated: reading its log`);
      const text = await this.#replayLog();
      const t = state.terminated;
      if (!text && t.exitCode !== 0 && this.#o.container) {
        const why = [t.reason, t.message].filter(Boolean).join(": ") || `exit code ${t.exitCode}`;
        throw new DbgError(`${this.name} ended before dbg could attach: ${why}`, {
          hint: "Check that the --image has a POSIX /bin/sh (dbg's entry script needs one)",
        });
      }
      this.#exit.resolve(t.exitCode);
      this.#bound.resolve(null);
      return;
    }
    // A new session's lifeline opens beside the attach and before the go line, so that a dbg
    // killed at any moment of the session is covered (until the go line the entry script ends
    // by itself).
    if (this.#o.container) {
      this.#lifeline = openLifeline(this.#o, this.name);
      this.#lifeline.catch((e) => this.#o.debug(`lifeline: ${e}`));
    }
    // The entry script's marks are taken out as the socket is read, whether or not the session
    // reads the output yet: the ready mark comes before it does.
    let code: number | undefined;
    const ready = Promise.withResolvers<void>();
    const marks = entryMarks({ exit: (n) => (code = n), ready: () => ready.resolve() });
    const socket = await this.#openAttach(marks);
    await this.#lifeline?.catch(() => {});
    if (this.#closed) return socket.close();
    this.#socket = socket;
    this.#source.resolve(socket.output);
    this.#o.debug(`attached to ${this.name} (${socket.protocol})`);
    const tty = this.#plan.sidecar.tty;
    if (tty) {
      const size = () => consoleSize() ?? { columns: 80, rows: 24 };
      const { columns, rows } = size();
      // kubectl's redraw trick: a different size first, then the real one.
      socket.resize(rows + 1, columns + 1);
      socket.resize(rows, columns);
      // An idle shell sends nothing; proxies drop quiet connections. A resize to the same size
      // is a no-op for the terminal and keeps the connection alive.
      const keep = setInterval(() => {
        const { columns, rows } = size();
        socket.resize(rows, columns);
      }, 30_000);
      socket.closed.finally(() => clearInterval(keep));
    }
    // Before v5 stdin cannot be half-closed: then a command without input gets /dev/null.
    const noInput = !this.#plan.sidecar.stdin && !socket.canCloseStdin;
    if (this.#o.container) {
      socket.send(STDIN, new TextEncoder().encode(noInput ? "nostdin\n" : "\n"));
      // The kubelet joins the attach's stderr only after its stdin: the entry script goes on
      // once dbg has seen its ready mark there (it sends one each second until then).
      if (!tty) {
        const ended = socket.closed.then(() => true, () => true);
        const seen = await Promise.race([
          ready.promise.then(() => true),
          ended,
          delay(READY_WAIT_MS),
        ]);
        if (!seen) this.#o.debug(`no ready mark within ${READY_WAIT_MS} ms: going on`);
        socket.send(STDIN, new TextEncoder().encode("\n"));
      }
    }
    this.#went = true;
    if (!this.#plan.sidecar.stdin) socket.closeStdin();
    else if (!socket.canCloseStdin && !tty) {
      this.#o.debug(`${socket.protocol}: the end of your input cannot reach the command`);
    }
    this.#bound.resolve(socket);
    socket.closed.then(async (st) => {
      // (The socket has been read to its end: the trailer, if any, has been seen.)
      if (code !== undefined) return this.#exit.resolve(code);
      // Nothing came: the API server may not have reached the kubelet. It says so in the
      // status, which is lost when it closes on our first frames (a TCP reset); then a log
      // request, which takes the same way, tells.
      const unreachable = socket.received === 0 &&
        (unreachableNode(st?.message)
          ? st?.message
          : await kube.kubeletUnreachable(namespace, pod, this.name));
      if (unreachable) this.#exit.reject(this.#kubeletOutOfReach(unreachable));
      else await this.#finish(st);
    }).catch((e) => this.#exit.reject(e));
  }

  async resize(rows: number, cols: number): Promise<void> {
    (await this.#bound.promise)?.resize(rows, cols);
  }

  async signal(signal: Deno.Signal): Promise<void> {
    await this.#exec(killScript(signal.replace(/^SIG/, ""), false));
  }

  async hangUp(): Promise<void> {
    await this.#exec(hangupScript());
  }

  /**
   * Ephemeral containers cannot be deleted: make sure that nothing of the session runs on. A
   * container still running gets its processes killed through exec; if even that is not
   * allowed, the error says how to end it by hand.
   */
  async remove(): Promise<void> {
    const { kube, namespace, pod } = this.#o;
    if (this.#detached) return;
    const now = await kube.call(
      { verb: "get", resource: "pods", name: pod, namespace },
      () => kube.core.readNamespacedPod({ name: pod, namespace }),
    ).catch((e) => {
      if (e instanceof DbgError && e.message.startsWith("No such pod")) return null;
      throw new LeftBehind(`${this.name} may still run in pod ${pod}`, {
        hint: `once the API server answers, see: dbg k8s -n ${namespace} ${pod} --sessions`,
        cause: e,
      });
    });
    if (!now) return; // gone with its pod
    let state = ecState(now, this.name);
    if (!state?.running && !state?.terminated && this.#o.container) {
      // Stopped while it was being created: it would wait for dbg for minutes once it runs.
      state = await this.#stateWithin(3000, (st) => !!(st?.running || st?.terminated));
      if (!state?.running) {
        this.#o.debug(`${this.name} has not started; it ends within ${GO_TIMEOUT_S}s if it does`);
        return;
      }
    }
    if (!state?.running) return; // ended
    try {
      await this.#exec(killScript("TERM", false));
      if (await this.#terminatedWithin(3000)) return;
      await this.#exec(killScript("KILL", true));
      if (await this.#terminatedWithin(5000)) return;
      throw new Error("still running after SIGKILL");
    } catch (e) {
      // An exec into a container that has just ended fails too: the status may only lag.
      if (await this.#terminatedWithin(5000).catch(() => false)) return;
      if (!this.#went && this.#o.container) {
        // Never started its session: it gives up waiting for dbg by itself.
        this.#o.debug(`${this.name} waits for dbg in vain and ends within ${GO_TIMEOUT_S}s`);
        return;
      }
      throw new LeftBehind(`${this.name} is still running in pod ${pod}`, {
        hint: `ephemeral containers cannot be removed; end it from inside: ` +
          `dbg k8s -n ${namespace} ${pod} --attach ${this.name}, then exit (${errText(e)})`,
        cause: e,
      });
    }
  }

  async #openAttach(marks: OutputFilter): Promise<ChannelSocket> {
    const { kube, namespace, pod } = this.#o;
    const tty = this.#plan.sidecar.tty;
    const q = new URLSearchParams({
      container: this.name,
      stdin: "true",
      stdout: "true",
      stderr: String(!tty),
      tty: String(tty),
    });
    const target = await kube.socket(namespace, pod, "attach", q);
    try {
      return await ChannelSocket.open(target, marks);
    } catch (e) {
      const why = refusal(e);
      if (unreachableNode(why)) throw this.#kubeletOutOfReach(why);
      throw new DbgError(`Cannot attach to ${this.name} in pod ${pod}: ${why}`, {
        hint: why.startsWith("forbidden")
          ? `Ask for "get" and "create" on "pods/attach" (check: ` +
            `${canI({ verb: "create", resource: "pods/attach", namespace })}); ` +
            `${this.name} ends by itself within ${GO_TIMEOUT_S} s`
          : "Check that the API server can reach the node's kubelet (kubectl logs works?)",
        cause: e,
      });
    }
  }

  /**
   * The API server could not reach the node's kubelet for the attach (it refused the upgrade,
   * or said so once upgraded): nothing reached the container. A new session's container never
   * got its go line and ends by itself; a reattached one goes on as it was. Either way there is
   * nothing to end. Returns the error to report.
   */
  #kubeletOutOfReach(message: string): DbgError {
    this.#went = false;
    this.#detached = true;
    const { namespace, pod } = this.#o;
    const detail = /dial tcp .*/.exec(message)?.[0] ?? message;
    return new DbgError(
      `Cannot attach to ${this.name} in pod ${pod}: the API server cannot reach the node's ` +
        `kubelet (${detail})`,
      {
        hint: "Check the pod's node (kubectl get pod -o wide, kubectl get node) and that the " +
          "API server reaches its kubelet on port 10250 (kubectl logs fails the same way); " +
          (this.#o.container
            ? `${this.name} ends by itself within ${GO_TIMEOUT_S} s`
            : `${this.name} goes on: reattach with dbg k8s -n ${namespace} ${pod} ` +
              `--attach ${this.name}`),
      },
    );
  }

  /** After the attach ends: the exit code from the status (it lags the exit by a second). */
  async #finish(st: StreamStatus | undefined): Promise<void> {
    if (st && st.status === "Failure") this.#o.debug(`attach status: ${JSON.stringify(st)}`);
    const deadline = Date.now() + 30_000;
    const { kube, namespace, pod } = this.#o;
    while (Date.now() < deadline) {
      const p = await kube.call(
        { verb: "get", resource: "pods", name: pod, namespace },
        () => kube.core.readNamespacedPod({ name: pod, namespace }),
      ).catch((e) => {
        this.#exit.reject(e);
        throw e;
      });
      const t = ecState(p, this.name)?.terminated;
      if (t) return this.#exit.resolve(t.exitCode);
      // The session let go of the container itself (a stop): remove() sees to it.
      if (this.#closed) return this.#exit.reject(new Error(`${this.name}: attachment closed`));
      await delay(200);
    }
    // The connection broke (a proxy's idle timeout, the kubelet's stream limit): the session
    // goes on in the pod, so it is left alone for a reattach.
    this.#detached = true;
    this.#exit.reject(
      new DbgError(`The attach to ${this.name} ended, but it is still running`, {
        hint: `Reattach with: dbg k8s -n ${namespace} ${pod} --attach ${this.name}`,
      }),
    );
  }

  #stateWithin(ms: number, enough: (st: k8s.V1ContainerState | undefined) => boolean) {
    return stateWithin(this.#o.kube, { ...this.#o, name: this.name, ephemeral: true }, ms, enough);
  }

  async #terminatedWithin(ms: number): Promise<boolean> {
    return !!(await this.#stateWithin(ms, (st) => !!st?.terminated))?.terminated;
  }

  async #replayLog(): Promise<string> {
    const { kube, namespace, pod } = this.#o;
    const text = await kube.call(
      { verb: "get", resource: "pods/log", name: pod, namespace },
      () => kube.core.readNamespacedPodLog({ name: pod, namespace, container: this.name }),
    );
    const data = new TextEncoder().encode(text ?? "");
    this.#source.resolve(ReadableStream.from(data.length ? [{ stream: 1 as const, data }] : []));
    return text ?? "";
  }

  /** Run a short script in the sidecar's container (exec), for signals. */
  #exec(script: string): Promise<void> {
    return runScript(this.#o, this.name, script);
  }

  lifeline(): Promise<Lifeline> {
    this.#lifelineTaken = true;
    return this.#lifeline ?? openLifeline(this.#o, this.name);
  }
}
