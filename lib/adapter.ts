/**
 * The contract between the runtime-independent lifecycle (lib/) and one runtime (runtimes/).
 *
 * An adapter translates; lib/ decides. The order of calls lives in `lib/session.ts`:
 * create → attach → begin waiting → start → resize → collect the exit code → remove.
 *
 * @module
 */

import type { DebugPlan } from "./plan.ts";

/** Runtime-neutral facts about the target container, gathered by `inspectTarget`. */
export interface TargetFacts {
  /** Full id, as the runtime knows it. */
  id: string;
  /** Human name (docker name, pod/container, …). */
  name: string;
  running: boolean;
  /** The runtime's word for the state (running, exited, paused, …). */
  state: string;
  /**
   * The target's main PID as the sidecar will see it, or 0 when only a search inside the sidecar
   * can tell (the target shares a PID namespace it does not own).
   */
  pid: number;
  /**
   * Where the target's root filesystem is inside its main process's root, when it is not that
   * root itself: a node's, which its pod mounts at `/host`.
   */
  rootPath?: string;
  /** `private`: PID 1 in its own namespace; `host`: host PID namespace; `shared`: another's. */
  pidNamespace: "private" | "host" | "shared";
  /**
   * The user the target runs as: its live `UID:GID` where the adapter can read it on the
   * engine's host, else as the runtime reports it ("" = image default/root).
   */
  user: string;
  /** The first line of the target's uid_map when it runs in a user namespace of its own. */
  userNamespace?: string;
  readOnlyRootfs: boolean;
  privileged: boolean;
  /**
   * The capabilities the target adds to the runtime's defaults ("ALL": every one), and drops
   * from them, as its runtime reports them (names without CAP_). Absent: the defaults.
   */
  caps?: { add: string[]; drop: string[] };
  /** The target's working directory ("/" when unknown). */
  cwd: string;
  /** Whether the sidecar may join the target's IPC namespace, and how. */
  ipc: "shareable" | "host" | "private" | "none";
  /** e.g. "linux/amd64" when known. */
  platform?: string;
  /**
   * Kubernetes only: what the pod allows its containers. `psa` is the namespace's Pod Security
   * `enforce` level ("" when unlabelled); `runAsNonRoot` is the pod's (or the target's) setting,
   * which binds an ephemeral container too.
   */
  security?: {
    psa: "" | "privileged" | "baseline" | "restricted";
    runAsNonRoot: boolean;
  };
  /**
   * Set when the target is not running, or is an image: the session debugs a throwaway copy,
   * which `createCopy` makes, and the facts above describe the copy as the sidecar will see it.
   */
  copy?: CopyFacts;
}

/** What a session on a copy says about the original, and what it keeps at hand. */
export interface CopyFacts {
  /** How the target ended, or what it is: "exited with code 1 5 minutes ago", "is an image". */
  ended: string;
  /** The target's effective ENTRYPOINT + CMD (`$DBG_ENTRYPOINT` in the session). */
  entrypoint: string[];
  /** Whether the copy mounts the target's volumes, whose changes are not discarded. */
  volumes: boolean;
  /** What the copy could not keep, if anything ("its own filesystem changes"). */
  lost?: string;
  /** The banner, when the session runs in something else than a copy (a node's pod). */
  banner?: string;
}

/** A running throwaway copy of a target (see `TargetFacts.copy`). */
export interface TargetCopy {
  /** Remove the copy and everything made for it. Safe to call twice. */
  remove(): Promise<void>;
}

/** What an adapter can do; lib/options rejects a flag whose capability is missing. */
export interface AdapterSupports {
  /** `--keep` (leave the sidecar after exit). */
  keep: boolean;
  /** `--privileged`. */
  privileged: boolean;
  /** `--name`. */
  name: boolean;
  /** `image:REF` targets (`inspectImage`). */
  images: boolean;
  /** `--copy` (Kubernetes: a copy of the pod; Docker and containerd copy a dead target anyway). */
  copy: boolean;
  /** Joining a running session (`dbg attach`, `--attach`): `plan.sidecar.existing`. */
  attach: boolean;
}

/**
 * Output of the sidecar: stdout (1) and stderr (2) chunks, in order. A chunk's bytes may be a
 * view of a buffer that the stream reads into again: use them before reading the next chunk.
 */
export interface OutputChunk {
  stream: 1 | 2;
  data: Uint8Array;
}

/** The attached streams of a sidecar. */
export interface Attachment {
  /** Sidecar output. Ends when the sidecar's output closes. */
  output: ReadableStream<OutputChunk>;
  /** Write raw bytes to the sidecar's stdin. */
  write(data: Uint8Array): Promise<void>;
  /** Signal EOF on the sidecar's stdin (half-close). */
  closeWrite(): Promise<void>;
  /** Tear the attachment down. Safe to call twice. */
  close(): void;
}

/** A created sidecar. */
export interface Sidecar {
  id: string;
  name: string;
  /** Attach stdio before start so that no output is lost. */
  attach(): Promise<Attachment>;
  /**
   * Register for the exit status before start (so a fast command's status is not lost). Resolves
   * once registered; the returned promise resolves with the exit code.
   */
  beginWait(): Promise<{ exit: Promise<number> }>;
  /**
   * Start the sidecar. `stop` is aborted when the session is stopped meanwhile: an adapter whose
   * start takes long (Kubernetes waits for the container) gives up waiting then.
   */
  start(stop?: AbortSignal): Promise<void>;
  resize(rows: number, cols: number): Promise<void>;
  /** Send a signal to the sidecar's main process. */
  signal(signal: Deno.Signal): Promise<void>;
  /**
   * End a terminal session: SIGHUP to every process of the sidecar, as a closed terminal would
   * send it. The entry shell waits on its foreground job and runs no trap meanwhile; the job
   * ends, and the entry shell then reaps what it started and exits.
   */
  hangUp(): Promise<void>;
  /**
   * True when the engine removes the sidecar by itself once it exits (Docker's AutoRemove),
   * so a session that ended with the sidecar's exit need not remove it.
   */
  readonly removesItself: boolean;
  /** How long after the sidecar's process ends the engine can report it (default 0). */
  readonly exitLagMs?: number;
  /** Remove the sidecar (force). Safe when it is already gone. */
  remove(): Promise<void>;
  /**
   * Open dbg's lifeline once the sidecar has started (lib/kill.ts): an exec whose input dbg
   * holds, which hangs the session up when that input ends.
   */
  lifeline?(): Promise<Lifeline>;
}

/** An open lifeline: the input dbg writes to it (lib/kill.ts says what), and its end. */
export interface Lifeline {
  write(data: Uint8Array): Promise<void>;
  close(): void;
}

/** Progress of an image pull, reported by `ensureImage`. */
export interface PullProgress {
  (event: { status: string; current?: number; total?: number; id?: string }): void;
}

/** One runtime. Each runtimes/<name>.ts exports one object of this shape as `adapter`. */
export interface RuntimeAdapter {
  readonly name: string;
  readonly supports: AdapterSupports;
  /** How a user lists running containers on this runtime (for hints). */
  readonly listHint: string;
  /** Connect to the engine (endpoint from the options). Called once before anything else. */
  connect(opts: ConnectOptions): Promise<void>;
  inspectTarget(target: string): Promise<TargetFacts>;
  /** Facts of an image to debug through a copy (`image:REF`), once `ensureImage` has it. */
  inspectImage?(ref: string): Promise<TargetFacts>;
  /**
   * Make and start the throwaway copy that `plan.copy` describes, before the sidecar, which
   * joins it. On failure, or once `stop` is aborted, it removes what it made and throws.
   */
  createCopy?(plan: DebugPlan, stop: AbortSignal): Promise<TargetCopy>;
  /**
   * Make the image available; `pull` decides when to pull ("missing" checks first). The
   * lifecycle calls it with "always" before create, or after create failed with
   * `ImageNotPresent`.
   */
  ensureImage(
    ref: string,
    opts: { pull: "missing" | "always" | "never"; progress?: PullProgress },
  ): Promise<void>;
  /** Create the sidecar; throws `ImageNotPresent` when the engine lacks the image. */
  createSidecar(plan: DebugPlan): Promise<Sidecar>;
  /** The target's dbg sessions as a table (`--sessions`), where the runtime keeps them. */
  listSessions?(): Promise<string>;
  /** Everything dbg sessions made on this engine (`dbg sessions`, `dbg gc`). */
  sessionParts?(): Promise<SessionPart[]>;
  /** Remove these parts (`dbg gc`), containers before what they use. */
  removeParts?(parts: SessionPart[]): Promise<void>;
}

/** One thing a dbg session made on an engine, as `dbg sessions` and `dbg gc` see it. */
export interface SessionPart {
  /** The session's id (the `dbg.session` label). */
  session: string;
  /**
   * sidecar or copy; `pod`: a Kubernetes copy or node pod, held while dbg's ephemeral container
   * in it runs; `rest` is any other piece (an image, a lease, a snapshot, a FIFO dir).
   */
  kind: "sidecar" | "copy" | "pod" | "rest";
  /** As users name it (a container's name); `ref` is the adapter's own handle. */
  name: string;
  ref: string;
  /** The target's name (a sidecar's or a copy's); "" for the rest. */
  target: string;
  /** When it was made, in ms since the epoch. */
  created: number;
  /** The engine's word: running, exited, created… */
  state: string;
  /**
   * A running sidecar or pod: whether a dbg still holds it, by its lifeline (lib/kill.ts).
   * Undefined where the runtime cannot tell.
   */
  attached?: boolean;
}

/** Options an adapter may read when connecting. */
export interface ConnectOptions {
  /** The engine's endpoint: docker `-H/--host`, containerd `--address`. */
  host?: string;
  /** containerd `-n/--namespace` (empty: search every namespace). */
  namespace?: string;
  /** containerd `--pod-namespace` for POD/CONTAINER targets. */
  podNamespace?: string;
  /** Registries to reach over plain HTTP (containerd `--insecure-registry`). */
  insecureRegistries?: string[];
  /** Kubernetes: `--kubeconfig` and `--context`. */
  kubeconfig?: string;
  context?: string;
  /** Kubernetes: how long to wait for the ephemeral container to start (ms). */
  timeoutMs?: number;
  /** Kubernetes: debug a copy of the pod (`--copy`). */
  copy?: boolean;
  debug: (msg: string) => void;
  /** One-line notices for the user (not with -q). */
  notice?: (msg: string) => void;
}
