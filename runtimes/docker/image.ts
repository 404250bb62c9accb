/**
 * Making the debugger image available on Docker: use the local one when `--pull` allows, else
 * pull through `POST /images/create` with credentials from ~/.docker/config.json.
 *
 * @module
 */

import type { PullProgress } from "../../lib/adapter.ts";
import { DbgError, imageNotFound, pullRefused } from "../../lib/errors.ts";
import { parseImageRef } from "../../images/ref.ts";
import { registryAuthHeader } from "../registry/auth.ts";
import { jsonLines } from "../../lib/http1.ts";
import { badResponse } from "./_wire.ts";
import type { DockerClient } from "./http.ts";

/** One line of the pull progress stream. */
interface PullEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { code?: number; message?: string };
}

/** Ensure `ref` is present in the daemon, pulling per the policy. */
export async function ensureDockerImage(
  client: DockerClient,
  ref: string,
  opts: {
    pull: "missing" | "always" | "never";
    progress?: PullProgress;
    debug: (msg: string) => void;
  },
): Promise<void> {
  if (opts.pull !== "always") {
    const res = await client.request("GET", `/images/${ref}/json`, { okStatuses: [404] });
    if (res.status !== 404) {
      opts.debug(`image ${ref} is present`);
      return;
    }
    if (opts.pull === "never") {
      throw imageNotFound(
        ref,
        "not present locally and --pull never",
        `Pull it first (${client.engine.cli} pull ${ref}) or drop --pull never`,
      );
    }
  }
  await pull(client, ref, opts);
}

async function pull(
  client: DockerClient,
  ref: string,
  opts: { progress?: PullProgress; debug: (msg: string) => void },
): Promise<void> {
  const parsed = parseImageRef(ref);
  const auth = await registryAuthHeader(ref, {
    env: (k) => Deno.env.get(k),
    home: Deno.env.get("HOME"),
  });
  opts.debug(`pulling ${ref} (${auth ? "with" : "without"} registry credentials)`);
  let stream;
  try {
    stream = await client.stream("POST", "/images/create", {
      query: { fromImage: parsed.fromImage, tag: parsed.digest ?? parsed.tag ?? "latest" },
      headers: auth ? { "X-Registry-Auth": auth } : {},
    });
  } catch (e) {
    if (e instanceof DbgError && "status" in e) {
      throw pullError(ref, e.message, client.engine.cli, e);
    }
    throw e;
  }
  // A pull can fail with status 200: every line may carry an error.
  for await (const ev of jsonLines<PullEvent>(stream.body, badResponse)) {
    const err = ev.errorDetail?.message ?? ev.error;
    if (err) throw pullError(ref, err, client.engine.cli);
    opts.progress?.({
      status: ev.status ?? "",
      id: ev.id,
      current: ev.progressDetail?.current,
      total: ev.progressDetail?.total,
    });
  }
  opts.progress?.({ status: "done" });
}

/** Classify a pull failure into not-found, refused, or unreachable; never echo credentials. */
export function pullError(
  ref: string,
  message: string,
  cli: string,
  cause?: unknown,
): DbgError {
  if (
    /unauthorized|authentication required|no basic auth credentials|denied|forbidden|\b40[13]\b/i
      .test(
        message,
      )
  ) {
    return pullRefused(ref, message);
  }
  if (/not found|manifest unknown|does not exist|no such image|\b404\b/i.test(message)) {
    return imageNotFound(ref, message);
  }
  return new DbgError(`Cannot pull ${ref}: ${message}`, {
    hint:
      `Check that the registry is reachable from the engine's host, or load the image there (${cli} load) and use --pull never`,
    cause,
  });
}
