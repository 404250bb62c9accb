/**
 * A Docker sidecar: the per-container calls of the lifecycle (attach, wait, start, resize,
 * signal, stop, remove), each one Engine API request.
 *
 * @module
 */

import type { Attachment, Lifeline, OutputChunk, Sidecar } from "../../lib/adapter.ts";
import { DbgError } from "../../lib/errors.ts";
import type { DebugPlan } from "../../lib/plan.ts";
import { hangupScript, lifelineArgv } from "../../lib/kill.ts";
import { attachOutput, capitalized } from "./_wire.ts";
import { DockerApiError, type DockerClient } from "./http.ts";

/**
 * The detach sequence sent with attach. Docker's default (ctrl-p,ctrl-q) would swallow Ctrl-P
 * in the shell, and a short one can be typed by chance (Ctrl-^ twice is vim's alternate file);
 * dbg sessions end when the command ends, so it is four keys nobody types in a row.
 */
const DETACH_KEYS = "ctrl-_,ctrl-^,ctrl-_,ctrl-^";

/** One created Docker sidecar. */
export class DockerSidecar implements Sidecar {
  readonly id: string;
  readonly name: string;
  readonly removesItself: boolean;
  #client: DockerClient;
  #plan: DebugPlan;
  #debug: (msg: string) => void;

  constructor(
    client: DockerClient,
    o: { id: string; name: string; plan: DebugPlan; debug: (msg: string) => void },
  ) {
    this.#client = client;
    this.id = o.id;
    this.name = o.name;
    this.#plan = o.plan;
    this.#debug = o.debug;
    this.removesItself = !o.plan.keep && client.engine.autoRemoves;
  }

  async attach(): Promise<Attachment> {
    const s = this.#plan.sidecar;
    const conn = await this.#client.hijack(`/containers/${this.id}/attach`, {
      query: { stream: 1, stdin: s.stdin ? 1 : 0, stdout: 1, stderr: 1, detachKeys: DETACH_KEYS },
    });
    // Decide the framing from the container's Tty setting, not from the response header: API
    // 1.41 says raw-stream for multiplexed streams too (protocols.md §1.8). The stream is made
    // when the session first reads it, after the start (see DockerClient.later); until then
    // the output waits in the connection.
    let output: ReadableStream<OutputChunk> | undefined;
    const tty = s.tty, engine = this.#client.engine;
    return {
      get output() {
        return output ??= attachOutput(conn.read, { tty, engine, onCancel: () => conn.close() });
      },
      write: (data) => conn.write(data),
      closeWrite: () => conn.closeWrite(),
      close: () => conn.close(),
    };
  }

  async beginWait(): Promise<{ exit: Promise<number> }> {
    // `next-exit`: a freshly created container already counts as not running.
    const res = await this.#client.later("POST", `/containers/${this.id}/wait`, {
      query: { condition: "next-exit" },
    });
    const exit = (async () => {
      const text = new TextDecoder().decode(await res.body);
      this.#debug(`sidecar ${this.name} exited: ${text.trim()}`);
      let body: { StatusCode?: number; Error?: { Message?: string } | null };
      try {
        body = JSON.parse(text);
      } catch (e) {
        throw new DbgError(`Lost the exit status of sidecar ${this.name}`, {
          hint: `${
            capitalized(this.#client.engine.service)
          } may have stopped; check it with: ${this.#client.engine.cli} info`,
          cause: e,
        });
      }
      if (body.Error?.Message) {
        throw new DbgError(`Sidecar ${this.name} failed: ${body.Error.Message}`);
      }
      return body.StatusCode ?? 125;
    })();
    // Handled by the session; avoid an unhandled rejection if it never gets that far.
    exit.catch(() => {});
    return { exit };
  }

  async start(): Promise<void> {
    try {
      await this.#client.request("POST", `/containers/${this.id}/start`, { okStatuses: [304] });
    } catch (e) {
      throw startError(e, this.#plan, this.#client.engine.cli);
    }
  }

  async resize(rows: number, cols: number): Promise<void> {
    await this.#client.request("POST", `/containers/${this.id}/resize`, {
      query: { h: rows, w: cols },
    });
  }

  async signal(signal: Deno.Signal): Promise<void> {
    await this.#client.request("POST", `/containers/${this.id}/kill`, {
      query: { signal },
      okStatuses: [404, 409],
    });
  }

  /** Docker signals only a container's main process: the rest get theirs through an exec. */
  async hangUp(): Promise<void> {
    const res = await this.#client.request<{ Id: string }>(
      "POST",
      `/containers/${this.id}/exec`,
      { body: { Cmd: ["/bin/sh", "-c", hangupScript()] }, okStatuses: [404, 409] },
    );
    if (res.status !== 201) return; // gone, or not running any more
    const id = (res.body as { Id: string }).Id;
    await this.#client.request("POST", `/exec/${id}/start`, { body: { Detach: true } });
  }

  /** An exec whose stdin is this connection: the daemon ends that input when dbg is gone. */
  async lifeline(): Promise<Lifeline> {
    const res = await this.#client.request<{ Id: string }>("POST", `/containers/${this.id}/exec`, {
      body: { Cmd: lifelineArgv(), AttachStdin: true, AttachStdout: true, AttachStderr: true },
    });
    const id = (res.body as { Id: string }).Id;
    const conn = await this.#client.hijack(`/exec/${id}/start`, {
      body: { Detach: false, Tty: false },
    });
    // Nothing comes out of it; reading keeps the connection drained until it ends.
    conn.readable.pipeTo(new WritableStream()).catch(() => {});
    return conn;
  }

  async remove(): Promise<void> {
    const res = await this.#client.request("DELETE", `/containers/${this.id}`, {
      query: { force: 1, v: 1 },
      // 404: gone already; 409 with force: the daemon is removing it (AutoRemove) right now.
      okStatuses: [404, 409],
    });
    if (res.status !== 204) this.#debug(`sidecar ${this.name}: ${res.status}, already going`);
  }
}

/** Map a start failure like the docker CLI: the message names what failed. */
function startError(e: unknown, plan: DebugPlan, cli: string): unknown {
  if (!(e instanceof DockerApiError)) return e;
  const msg = e.message;
  if (/executable file not found|no such file or directory/i.test(msg)) {
    return new DbgError(`The debugger image ${plan.image.ref} cannot run dbg's entry: ${msg}`, {
      hint: "dbg needs a POSIX shell at /bin/sh in the debugger image; pick one from `dbg images`",
      cause: e,
    });
  }
  if (/non-shareable IPC/i.test(msg)) {
    return new DbgError(`Cannot join the IPC namespace of ${plan.target.name}: ${msg}`, {
      hint: "Start the target with --ipc shareable to share IPC with a debugger",
      cause: e,
    });
  }
  if (/cannot join|is not running|is restarting/i.test(msg)) {
    return new DbgError(`Cannot join ${plan.target.name}'s namespaces: ${msg}`, {
      hint: `The target stopped meanwhile; check it with: ${cli} ps -a`,
      cause: e,
    });
  }
  return new DbgError(`Cannot start the sidecar: ${msg}`, {
    hint: "Run with --debug for details",
    cause: e,
  });
}
