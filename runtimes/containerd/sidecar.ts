/**
 * A containerd sidecar: a container record with dbg's OCI spec, a snapshot of the debugger
 * image under a lease, FIFOs for stdio, and a task (protocols.md §2.7–2.12). The task is
 * created in `attach`, because the shim opens the FIFOs when the task is created.
 *
 * @module
 */

import type { Attachment, Lifeline, OutputChunk, Sidecar } from "../../lib/adapter.ts";
import { DbgError } from "../../lib/errors.ts";
import type { DebugPlan } from "../../lib/plan.ts";
import { SIGNAL_NUMBERS } from "../../lib/signals.ts";
import { hangupScript, lifelineArgv } from "../../lib/kill.ts";
import type { ContainerdClient, Message } from "./client.ts";
import { deleteTask } from "./copy.ts";
import { fifoSources } from "./fifo.ts";
import { sidecarSpec } from "./spec.ts";

const CONTAINERS = "containerd.services.containers.v1.Containers";
const TASKS = "containerd.services.tasks.v1.Tasks";
const SNAPSHOTS = "containerd.services.snapshots.v1.Snapshots";
const LEASES = "containerd.services.leases.v1.Leases";
const SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
const PROCESS_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/** The exec id of the lifeline (lib/kill.ts), by which `dbg sessions` knows a held sidecar. */
export const LIFELINE_EXEC = "lifeline";

/** What creating a sidecar needs besides the plan. */
export interface CreateOpts {
  namespace: string;
  snapshotter: string;
  imageName: string;
  chainId: string;
  hostPid: number;
  debug: (msg: string) => void;
}

/** Create the lease, snapshot and container record; the task comes with `attach`. */
export async function createContainerdSidecar(
  client: ContainerdClient,
  plan: DebugPlan,
  o: CreateOpts,
): Promise<Sidecar> {
  const id = plan.sidecar.name;
  const ns = o.namespace;
  const lease = id;
  const expire = new Date(Date.now() + 24 * 3600_000).toISOString();
  await client.call(
    LEASES,
    "Create",
    { id: lease, labels: { "containerd.io/gc.expire": expire } },
    {
      namespace: ns,
    },
  );
  const sidecar = new ContainerdSidecar(client, plan, { ...o, id, lease, mounts: [] });
  try {
    // The container names its snapshot by key, so the two are made at once (both under the
    // lease, which must exist first).
    const spec = sidecarSpec(plan, { hostPid: o.hostPid, namespace: ns, id });
    sidecar.process = spec.process as Record<string, unknown>;
    const [prepared] = await Promise.all([
      client.call(
        SNAPSHOTS,
        "Prepare",
        { snapshotter: o.snapshotter, key: id, parent: o.chainId },
        { namespace: ns, lease },
      ),
      client.call(CONTAINERS, "Create", {
        container: {
          id,
          labels: plan.sidecar.labels,
          image: o.imageName,
          runtime: { name: "io.containerd.runc.v2" },
          spec: { type_url: SPEC_TYPE, value: new TextEncoder().encode(JSON.stringify(spec)) },
          snapshotter: o.snapshotter,
          snapshot_key: id,
        },
      }, { namespace: ns, lease }),
    ]);
    sidecar.mounts = (prepared.mounts ?? []) as Message[];
  } catch (e) {
    await sidecar.remove().catch(() => {});
    throw e;
  }
  return sidecar;
}

class ContainerdSidecar implements Sidecar {
  readonly id: string;
  readonly name: string;
  readonly removesItself = false;
  mounts: Message[];
  /** The OCI process of the sidecar's task: an exec inherits its user and capabilities. */
  process: Record<string, unknown> = {};
  #client: ContainerdClient;
  #plan: DebugPlan;
  #o: CreateOpts & { lease: string };
  #fifoDir?: string;
  /** The lifeline's stdin and output FIFOs, made with the task's. */
  #lifeline: string[] = [];
  #files: Deno.FsFile[] = [];
  #task = false;
  /** The task has exited (its Wait answered): deleting it needs no kill. */
  #ended = false;
  #created = Promise.withResolvers<void>();

  constructor(
    client: ContainerdClient,
    plan: DebugPlan,
    o: CreateOpts & { id: string; lease: string; mounts: Message[] },
  ) {
    this.#client = client;
    this.#plan = plan;
    this.#o = o;
    this.id = o.id;
    this.name = o.id;
    this.mounts = o.mounts;
  }

  /**
   * The task joins the target's namespaces by /proc/<pid>/ns/* paths, with the PID read at
   * inspect time, before a pull that may be long: the target's task must still run with that
   * PID (which no other process gets while it lives), or the paths could name a stranger's.
   */
  async #sameTarget(): Promise<void> {
    const { id, name } = this.#plan.target;
    const task = await this.#client.call(TASKS, "Get", { container_id: id }, this.#ns()).then(
      (r) => r.process as Message | undefined,
      () => undefined,
    );
    if (task?.status !== "RUNNING" || Number(task.pid) !== this.#o.hostPid) {
      throw new DbgError(`${name} stopped while dbg prepared the session`, {
        hint: "Run dbg again: a target that does not run is debugged through a copy",
      });
    }
  }

  #ns(extra: { deadlineMs?: number } = {}) {
    return { namespace: this.#o.namespace, ...extra };
  }

  async attach(): Promise<Attachment> {
    const dir = this.#fifoDir = await Deno.makeTempDir({ prefix: "dbg-fifo-" });
    const paths = ["stdin", "stdout", "stderr"].map((n) => `${dir}/${this.id}-${n}`);
    const tty = this.#plan.sidecar.tty;
    // The lifeline's FIFOs too: one mkfifo, while the target is checked.
    const lifeline = this.#lifeline = ["in", "out"].map((n) => `${dir}/${this.id}-lifeline-${n}`);
    const fifos = async () => {
      const made = await new Deno.Command("mkfifo", { args: ["-m", "600", ...paths, ...lifeline] })
        .output();
      if (!made.success) throw new Error(`mkfifo failed: ${new TextDecoder().decode(made.stderr)}`);
    };
    await Promise.all([this.#sameTarget(), fifos()]).catch((e) => {
      this.#created.reject(e);
      throw e;
    });
    // The opens block until the shim opens the other ends, inside Tasks.Create.
    const opening = Promise.all([
      Deno.open(paths[0], { write: true }),
      Deno.open(paths[1], { read: true }),
      tty ? Promise.resolve(undefined) : Deno.open(paths[2], { read: true }),
    ]);
    try {
      await this.#client.call(TASKS, "Create", {
        container_id: this.id,
        rootfs: this.mounts,
        stdin: paths[0],
        stdout: paths[1],
        stderr: tty ? "" : paths[2],
        terminal: tty,
      }, this.#ns({ deadlineMs: 60_000 }));
    } catch (e) {
      this.#created.reject(e);
      throw e;
    }
    this.#task = true;
    this.#created.resolve();
    const [stdin, stdout, stderr] = await opening;
    this.#files = [stdin, stdout, ...(stderr ? [stderr] : [])];
    const outs = fifoSources([
      { file: stdout, path: paths[1], stream: 1 },
      ...(stderr ? [{ file: stderr, path: paths[2], stream: 2 as const }] : []),
    ]);
    // The stream is made when the session first reads it, after the start: a process's first
    // web stream costs ~2 ms of setup. Until then the output waits in the FIFOs.
    let output: ReadableStream<OutputChunk> | undefined;
    return {
      get output() {
        return output ??= merge(outs);
      },
      // FsFile.writable does not flush to a FIFO until close (protocols.md §2.10): write().
      write: async (data) => {
        let off = 0;
        while (off < data.length) off += await stdin.write(data.subarray(off));
      },
      closeWrite: async () => {
        // Never in TTY mode: closing stdin hangs up the shell.
        try {
          stdin.close();
        } catch { /* closed */ }
        await this.#client.call(
          TASKS,
          "CloseIO",
          { container_id: this.id, stdin: true },
          this.#ns(),
        );
      },
      close: () => {
        for (const f of this.#files) {
          try {
            f.close();
          } catch { /* closed */ }
        }
      },
    };
  }

  async beginWait(): Promise<{ exit: Promise<number> }> {
    // The task exists once attach has created it. The shim keeps the exit status until the
    // task is deleted, so there is no race with a fast exit.
    await this.#created.promise;
    const req = { container_id: this.id };
    const exit = this.#client.call(TASKS, "Wait", req, this.#ns({ deadlineMs: 0 }))
      .then((r) => {
        this.#ended = true;
        return Number(r.exit_status);
      });
    exit.catch(() => {});
    return { exit };
  }

  async start(): Promise<void> {
    await this.#client.call(TASKS, "Start", { container_id: this.id }, this.#ns());
  }

  async resize(rows: number, cols: number): Promise<void> {
    await this.#client.call(TASKS, "ResizePty", {
      container_id: this.id,
      width: cols,
      height: rows,
    }, this.#ns());
  }

  async signal(signal: Deno.Signal): Promise<void> {
    const n = SIGNAL_NUMBERS[signal];
    if (n === undefined || !this.#task) return;
    await this.#client.call(TASKS, "Kill", { container_id: this.id, signal: n }, this.#ns());
  }

  /** Kill with `all` would hang up every process at once: the script does it leaves first. */
  async hangUp(): Promise<void> {
    if (!this.#task) return;
    const exec = { container_id: this.id, exec_id: `hangup-${Date.now().toString(36)}` };
    const process = { ...this.process, terminal: false, args: ["/bin/sh", "-c", hangupScript()] };
    const value = new TextEncoder().encode(JSON.stringify(process));
    await this.#client.call(TASKS, "Exec", {
      ...exec,
      terminal: false,
      spec: { type_url: PROCESS_TYPE, value },
    }, this.#ns());
    try {
      await this.#client.call(TASKS, "Start", exec, this.#ns());
      await this.#client.call(TASKS, "Wait", exec, this.#ns({ deadlineMs: 10_000 }));
    } finally {
      await this.#client.call(TASKS, "DeleteProcess", exec, this.#ns())
        .catch((e) => this.#o.debug(`hangup exec: ${e}`));
    }
  }

  /**
   * An exec whose stdin is a FIFO that dbg holds open. The shim holds it open too, so the end of
   * a dbg killed shows only as the beats that stop (lib/kill.ts). Its output goes to a FIFO of
   * its own: without one, containerd 1.6 does not answer the Start.
   */
  async lifeline(): Promise<Lifeline> {
    const paths = this.#lifeline;
    const exec = { container_id: this.id, exec_id: LIFELINE_EXEC };
    const process = { ...this.process, terminal: false, args: lifelineArgv() };
    // Read and write: the opens do not wait for the shim's.
    const [fifo, out] = await Promise.all(
      paths.map((path) => Deno.open(path, { read: true, write: true })),
    );
    this.#files.push(out);
    await this.#client.call(TASKS, "Exec", {
      ...exec,
      stdin: paths[0],
      stdout: paths[1],
      stderr: paths[1],
      terminal: false,
      spec: { type_url: PROCESS_TYPE, value: new TextEncoder().encode(JSON.stringify(process)) },
    }, this.#ns());
    await this.#client.call(TASKS, "Start", exec, this.#ns());
    this.#files.push(fifo);
    return {
      write: async (data) => void await fifo.write(data),
      close: () => {
        try {
          fifo.close();
        } catch { /* closed */ }
      },
    };
  }

  /** Kill and delete the task, then the container, the snapshot, the lease and the FIFOs. */
  async remove(): Promise<void> {
    const ns = this.#ns();
    const quiet = (p: Promise<unknown>) => p.catch((e) => this.#o.debug(`cleanup: ${e}`));
    if (this.#task) await quiet(deleteTask(this.#client, this.id, ns, this.#ended));
    // Once the task is gone the rest are independent records.
    await Promise.all([
      quiet(this.#client.call(CONTAINERS, "Delete", { id: this.id }, ns)),
      quiet(this.#client.call(
        SNAPSHOTS,
        "Remove",
        { snapshotter: this.#o.snapshotter, key: this.id },
        ns,
      )),
      quiet(this.#client.call(LEASES, "Delete", { id: this.#o.lease }, ns)),
    ]);
    if (this.#fifoDir) await Deno.remove(this.#fifoDir, { recursive: true }).catch(() => {});
  }
}

/**
 * Interleave several chunk sources into one stream, ending when all have ended. After each
 * chunk a source waits for the next pull, which comes when the stream holds nothing and is
 * asked for more: the consumer is done with the chunk (whose buffer the source reuses). So a
 * slow reader holds the sidecar back instead of piling its output up here.
 */
function merge(sources: AsyncIterable<OutputChunk>[]): ReadableStream<OutputChunk> {
  let wanted: PromiseWithResolvers<void> | undefined;
  return new ReadableStream<OutputChunk>({
    start(ctl) {
      Promise.all(sources.map(async (s) => {
        for await (const chunk of s) {
          const taken = (wanted ??= Promise.withResolvers()).promise;
          ctl.enqueue(chunk);
          await taken;
        }
      })).then(() => ctl.close(), (e) => ctl.error(e)).catch(() => {}); // (a reader that left)
    },
    pull() {
      wanted?.resolve();
      wanted = undefined;
    },
  }, { highWaterMark: 0 });
}
