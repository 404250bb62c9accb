/**
 * Image references as Docker reads them (`ParseNormalizedNamed`): checked locally before any
 * engine sees them, and normalised (`busybox` → `docker.io/library/busybox:latest`).
 *
 * @module
 */

import { DbgError } from "../lib/errors.ts";

/** A parsed image reference. `fromImage` is what `POST /images/create?fromImage=` wants. */
export type ImageRef = {
  /** `docker.io` for Docker Hub, else `host[:port]`. */
  registry: string;
  /** `library/busybox`, `tools/bb`, … */
  repository: string;
  /** The tag; `latest` when the reference has neither a tag nor a digest. */
  tag?: string;
  /** `sha256:…` when the reference pins a digest. */
  digest?: string;
  /** `registry/repository`, fully qualified (Podman needs that). */
  fromImage: string;
};

/** Docker Hub's registry name in a normalised reference. */
export const HUB = "docker.io";
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

function invalidRef(ref: string, why: string): DbgError {
  return new DbgError(`Invalid image reference ${JSON.stringify(ref)}: ${why}`, {
    hint:
      "Use a reference like busybox:musl, registry.example.com/tools/debug:1 or name@sha256:<digest>",
  });
}

/**
 * Parses and normalises an image reference like Docker's `ParseNormalizedNamed`:
 * `busybox:musl` → registry `docker.io`, repository `library/busybox`, tag `musl`;
 * `127.0.0.1:5000/tools/bb:1`; `nixery.dev/shell/curl/jq`; `name@sha256:<hex>`.
 *
 * @example
 * ```ts
 * parseImageRef("busybox").fromImage; // "docker.io/library/busybox" (tag "latest")
 * ```
 */
export function parseImageRef(ref: string): ImageRef {
  if (/^[a-f0-9]{64}$/.test(ref)) throw invalidRef(ref, "an image id is not a reference");
  let name = ref;
  let digest: string | undefined;
  const at = name.indexOf("@");
  if (at >= 0) {
    digest = name.slice(at + 1);
    name = name.slice(0, at);
    const ok = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/.test(digest) &&
      (!digest.startsWith("sha256:") || /^sha256:[a-f0-9]{64}$/.test(digest));
    if (!ok) throw invalidRef(ref, "bad digest");
  }
  let tag: string | undefined;
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
    if (!/^[\w][\w.-]{0,127}$/.test(tag)) throw invalidRef(ref, "bad tag");
  }
  const slash = name.indexOf("/");
  const first = name.slice(0, slash);
  const hasDomain = slash > 0 &&
    (/[.:]/.test(first) || first === "localhost" || first.toLowerCase() !== first);
  let registry = hasDomain ? first : HUB;
  let repository = hasDomain ? name.slice(slash + 1) : name;
  if (registry === "index.docker.io") registry = HUB;
  if (!/^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::\d+)?$/.test(registry)) {
    throw invalidRef(ref, "bad registry host");
  }
  if (registry === HUB && repository !== "" && !repository.includes("/")) {
    repository = `library/${repository}`;
  }
  if (repository !== repository.toLowerCase()) {
    throw invalidRef(ref, "repository name must be lowercase");
  }
  if (!repository.split("/").every((c) => COMPONENT.test(c))) {
    throw invalidRef(ref, "bad repository name");
  }
  if (registry.length + repository.length + 1 > 255) throw invalidRef(ref, "name too long");
  if (!tag && !digest) tag = "latest";
  return { registry, repository, tag, digest, fromImage: `${registry}/${repository}` };
}
