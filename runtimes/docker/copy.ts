/**
 * Debugging a Docker container that is not running, or an image, through a throwaway copy.
 *
 * The copy is a new container of the original's committed filesystem (its own changes
 * included; an image is used as it is), with the original's env, working dir, user and
 * volumes, no network, and a private PID namespace whose PID 1 is dbg's keeper
 * (runtimes/_keeper.ts), uploaded into a volume of the copy's own. The sidecar then joins the
 * copy as it joins any running target. Nothing is written into the original or its image: a
 * commit reads the container's filesystem, and leaves its state and `docker diff` as they were.
 *
 * @module
 */

import type { TargetCopy, TargetFacts } from "../../lib/adapter.ts";
import { endedText } from "../../lib/ended.ts";
import { printable } from "../../lib/printable.ts";
import { DbgError } from "../../lib/errors.ts";
import type { DebugPlan } from "../../lib/plan.ts";
import { KEEPER_DIR, KEEPER_PATH, keeperArch, keeperElf } from "../_keeper.ts";
import { Steps } from "../_steps.ts";
import { DockerApiError, type DockerClient } from "./http.ts";

/** The parts of a container's or an image's `Config` a copy reads. */
interface CopyConfig {
  User?: string;
  WorkingDir?: string;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
}

/** The parts of `GET /containers/{id}/json` a copy reads. */
export interface StoppedContainer {
  Id: string;
  State: {
    Status: string;
    ExitCode?: number;
    FinishedAt?: string;
    OOMKilled?: boolean;
    Error?: string;
  };
  Config: CopyConfig;
  HostConfig: { ReadonlyRootfs?: boolean };
  Mounts?: unknown[];
  Platform?: string;
}

/** The parts of `GET /images/{ref}/json` a copy reads. */
export interface ImageJson {
  Id: string;
  Config?: CopyConfig | null;
  Os?: string;
  Architecture?: string;
}

/** The facts of a copy of a container that is not running, as the sidecar will see it. */
export function stoppedFacts(c: StoppedContainer, name: string): TargetFacts {
  const s = c.State;
  const ended = s.Status === "created"
    ? "was created and never started"
    : s.Status === "dead"
    ? `is dead (${endedText({ code: s.ExitCode, at: s.FinishedAt })})`
    : endedText({
      code: s.ExitCode,
      at: s.FinishedAt,
      reason: s.OOMKilled ? "OOMKilled" : s.Error,
    });
  return copyFacts(c.Id, name, c.Config, {
    state: s.Status,
    ended,
    volumes: (c.Mounts ?? []).length > 0,
    readOnlyRootfs: !!c.HostConfig.ReadonlyRootfs,
    platform: c.Platform,
  });
}

/** The facts of a throwaway container of an image. */
export function imageFacts(img: ImageJson, ref: string): TargetFacts {
  return copyFacts(img.Id, ref, img.Config ?? {}, {
    state: "image",
    ended: "is an image",
    volumes: false,
    readOnlyRootfs: false,
    platform: `${img.Os ?? "linux"}/${img.Architecture ?? ""}`,
  });
}

function copyFacts(
  id: string,
  name: string,
  config: CopyConfig,
  o: { state: string; ended: string; volumes: boolean; readOnlyRootfs: boolean; platform?: string },
): TargetFacts {
  return {
    id,
    name,
    running: false,
    state: o.state,
    // The copy owns its PID namespace, whose PID 1 is the keeper, and shares its IPC.
    pid: 1,
    pidNamespace: "private",
    user: config.User ?? "",
    readOnlyRootfs: o.readOnlyRootfs,
    privileged: false,
    cwd: config.WorkingDir || "/",
    ipc: "shareable",
    platform: o.platform,
    copy: {
      ended: o.ended,
      entrypoint: [...config.Entrypoint ?? [], ...config.Cmd ?? []],
      volumes: o.volumes,
    },
  };
}

/**
 * Make and start the copy that `plan.copy` describes. On failure, or once `stop` is aborted,
 * what was made is removed before this throws.
 */
export async function createDockerCopy(
  client: DockerClient,
  plan: DebugPlan,
  stop: AbortSignal,
  debug: (msg: string) => void,
): Promise<TargetCopy> {
  const copy = plan.copy;
  if (!copy) throw new Error("createDockerCopy without plan.copy");
  const labels = { "dbg.session": plan.runId, "dbg.copy-of": copy.source.id };
  const steps = new Steps(stop, (e, what) => copyError(e, what, copy.source.id));
  try {
    const [image, arch] = await Promise.all([
      copy.source.kind === "image" ? copy.source.id : steps.run(
        "committing the container's filesystem",
        async () => {
          // The commit reads the container's filesystem; pause=0 leaves its state alone.
          const res = await client.request<{ Id: string }>("POST", "/commit", {
            query: {
              container: copy.source.id,
              repo: "dbg-copy",
              tag: plan.runId,
              pause: 0,
              changes: `LABEL dbg.session=${plan.runId}`,
            },
            // No config to change; Podman's service needs the (JSON) body all the same.
            body: {},
          });
          return (res.body as { Id: string }).Id;
        },
        () => client.request("DELETE", `/images/dbg-copy:${plan.runId}`),
      ),
      client.request<{ Arch?: string }>("GET", "/version").then((r) =>
        (r.body as { Arch?: string }).Arch
      ),
    ]);
    const keeper = keeperArch(arch);
    if (!keeper) {
      throw new DbgError(`dbg cannot copy a container on a ${arch} engine`, {
        hint: "dbg brings its copy's main process for amd64 and arm64 only",
      });
    }
    debug(`copy ${copy.name}: image ${image}, keeper for ${keeper}`);
    const id = await steps.run(
      "creating the copy",
      async () => {
        const res = await client.request<{ Id: string }>("POST", "/containers/create", {
          query: { name: copy.name },
          body: copyBody(copy, image, labels),
        });
        return (res.body as { Id: string }).Id;
      },
      // v=1: the copy's own anonymous volumes (the keeper's, an image's VOLUMEs) go with it;
      // the original's, which it mounts, stay (the daemon keeps a volume another container uses).
      (id) =>
        client.request("DELETE", `/containers/${id}`, {
          query: { force: 1, v: 1 },
          okStatuses: [404],
        }),
    );
    await steps.run(
      "uploading the keeper",
      () =>
        client.request("PUT", `/containers/${id}/archive`, {
          query: { path: KEEPER_DIR },
          body: tarOf("keeper", keeperElf(keeper)),
          headers: { "Content-Type": "application/x-tar" },
        }),
    );
    await steps.run("starting the copy", () => client.request("POST", `/containers/${id}/start`));
    return { remove: () => steps.undo() };
  } catch (e) {
    await steps.undo().catch((r) => debug(`removing the copy after a failure: ${r}`));
    throw e;
  }
}

/** The copy's create body: the original's config, with the keeper as its main process. */
function copyBody(
  copy: NonNullable<DebugPlan["copy"]>,
  image: string,
  labels: Record<string, string>,
): unknown {
  const source = copy.source;
  return {
    Image: image,
    Entrypoint: [KEEPER_PATH],
    Cmd: [],
    Labels: labels,
    // The original's health check would run its programs in the copy.
    Healthcheck: { Test: ["NONE"] },
    NetworkDisabled: copy.network === "none",
    HostConfig: {
      NetworkMode: copy.network,
      IpcMode: "shareable",
      VolumesFrom: source.kind === "container" ? [source.id] : undefined,
      // An anonymous volume of the copy's own, for the keeper: an upload into it works even
      // when the copy's root is read-only, and the keeper stays out of the copy's filesystem.
      Mounts: [{ Type: "volume", Target: KEEPER_DIR }],
      // The keeper needs nothing: the sidecar brings its own privileges.
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      ReadonlyRootfs: copy.readOnly,
    },
  };
}

/** A one-file tar archive (ustar, mode 0755), as `PUT /containers/{id}/archive` takes it. */
function tarOf(name: string, data: Uint8Array): Uint8Array {
  const header = new Uint8Array(512);
  const enc = new TextEncoder();
  const field = (offset: number, text: string) => header.set(enc.encode(text), offset);
  const octal = (offset: number, width: number, n: number) =>
    field(offset, n.toString(8).padStart(width - 1, "0"));
  field(0, name);
  octal(100, 8, 0o755);
  octal(108, 8, 0); // uid
  octal(116, 8, 0); // gid
  octal(124, 12, data.length);
  octal(136, 12, Math.floor(Date.now() / 1000));
  field(148, "        "); // the checksum counts itself as spaces
  field(156, "0"); // a regular file
  field(257, "ustar\u000000");
  const sum = header.reduce((a, b) => a + b, 0);
  field(148, `${sum.toString(8).padStart(6, "0")}\u0000 `);
  const padded = Math.ceil(data.length / 512) * 512;
  const out = new Uint8Array(512 + padded + 1024);
  out.set(header);
  out.set(data, 512);
  return out;
}

/** A failed step as one line that says which step, and what the engine said. */
function copyError(e: unknown, what: string, source: string): unknown {
  if (!(e instanceof DockerApiError)) return e;
  return new DbgError(`Cannot debug a copy of ${source}: ${what} failed: ${printable(e.message)}`, {
    hint: "Run with --debug for the request details",
    cause: e,
  });
}
