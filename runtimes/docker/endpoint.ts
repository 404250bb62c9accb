/**
 * Where the Docker daemon listens, found the way the docker CLI finds it: `-H/--host`, then
 * `DOCKER_HOST`, then the current docker context, then `/var/run/docker.sock`. Also the errors
 * for an endpoint dbg cannot reach.
 *
 * @module
 */

import { dockerConfigDir, readDockerConfig } from "../registry/docker_config.ts";
import { DbgError, EngineUnreachable, usageError } from "../../lib/errors.ts";

/** Where the Docker daemon listens. */
export type DockerEndpoint =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; hostname: string; port: number };

/** The daemon the docker CLI uses when nothing else is configured. */
export const DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";

/** The endpoint as a URL for messages, e.g. `unix:///var/run/docker.sock`. */
export function describe(endpoint: DockerEndpoint): string {
  if (endpoint.kind === "unix") return `unix://${endpoint.path}`;
  const host = endpoint.hostname.includes(":") ? `[${endpoint.hostname}]` : endpoint.hostname;
  return `tcp://${host}:${endpoint.port}`;
}

const HOST_HINT =
  "Pass -H unix:///var/run/docker.sock or -H tcp://host:port, or fix DOCKER_HOST / the docker context";
const SSH_HINT =
  "Forward the remote socket and use it: ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock user@host, then -H unix:///tmp/docker.sock";

/**
 * Parses a Docker host URL (`unix:///path`, `tcp://host:port`). `from` names where it came from,
 * for messages. TLS (`tls: true`, `https://`) and `ssh://` are refused: dbg does not speak them yet.
 */
export function parseDockerHost(
  url: string,
  opts: { from: string; tls?: boolean },
): DockerEndpoint {
  const value = url.trim();
  const m = /^([a-z]+):\/\/(.*)$/i.exec(value);
  const scheme = m ? m[1].toLowerCase() : value.startsWith("/") ? "unix" : "tcp";
  const rest = m ? m[2] : value;
  if (scheme === "ssh" || scheme === "https" || (scheme !== "unix" && opts.tls)) {
    const what = scheme === "ssh" ? "ssh" : "TLS";
    const why = opts.tls && scheme !== "https" && scheme !== "ssh" ? ", TLS is enabled" : "";
    return fail(`${what} endpoints are not supported yet: ${value} (from ${opts.from}${why})`, {
      hint: scheme === "ssh" ? SSH_HINT : `Use the daemon's Unix socket instead. ${SSH_HINT}`,
    });
  }
  if (scheme === "unix") {
    if (!rest) return fail(`Bad Docker host ${value} (from ${opts.from}): no socket path`);
    return { kind: "unix", path: rest };
  }
  if (scheme !== "tcp" && scheme !== "http") {
    return fail(`Unsupported Docker host ${value} (from ${opts.from})`, {
      hint: "Use unix:///path/to/docker.sock or tcp://host:port",
    });
  }
  const hp = /^(\[[0-9a-fA-F:.]+\]|[^:/\[\]]+)(?::(\d{1,5}))?\/?$/.exec(rest);
  const port = hp ? Number(hp[2] ?? 2375) : NaN;
  if (!hp || port < 1 || port > 65535) {
    return fail(`Bad Docker host ${value} (from ${opts.from}): expected tcp://host:port`);
  }
  return { kind: "tcp", hostname: hp[1].replace(/^\[|\]$/g, ""), port };
}

function fail(message: string, opts: { hint?: string } = {}): never {
  throw opts.hint ? new DbgError(message, opts) : usageError(message, HOST_HINT);
}

/**
 * Finds the daemon to talk to, in the docker CLI's order: the `-H/--host` flag, `DOCKER_HOST`,
 * the current context (`DOCKER_CONTEXT`, else `currentContext` in config.json; "default" means
 * no override), then `unix:///var/run/docker.sock`. `source` says which one won (for --debug).
 *
 * @example
 * ```ts
 * const { endpoint } = await resolveEndpoint({ env: Deno.env.get });
 * ```
 */
export async function resolveEndpoint(
  opts: { host?: string; env: (k: string) => string | undefined; home?: string },
): Promise<{ endpoint: DockerEndpoint; source: string }> {
  const tls = Boolean(opts.env("DOCKER_TLS_VERIFY") || opts.env("DOCKER_TLS"));
  if (opts.host !== undefined) {
    return {
      endpoint: parseDockerHost(opts.host, { from: "-H/--host", tls }),
      source: "-H/--host",
    };
  }
  const envHost = opts.env("DOCKER_HOST");
  if (envHost) {
    return {
      endpoint: parseDockerHost(envHost, { from: "DOCKER_HOST", tls }),
      source: "DOCKER_HOST",
    };
  }
  const configDir = dockerConfigDir(opts.env, opts.home);
  let name = opts.env("DOCKER_CONTEXT");
  let from = "DOCKER_CONTEXT";
  let note = "";
  if (!name && configDir) {
    // Like the docker CLI, a missing or broken config.json is not fatal here.
    from = `currentContext in ${configDir}/config.json`;
    const { config, error } = await readDockerConfig(configDir);
    if (typeof config?.currentContext === "string") name = config.currentContext;
    if (error && !(error instanceof Deno.errors.NotFound)) {
      note = ` (config.json ignored: ${error})`;
    }
  }
  if (name && name !== "default") {
    const source = `docker context "${name}" (${from})`;
    return { endpoint: await contextEndpoint(name, configDir, source), source };
  }
  return {
    endpoint: parseDockerHost(DEFAULT_DOCKER_HOST, { from: "default" }),
    source: `default${name ? ` (docker context "default", ${from})` : ""}${note}`,
  };
}

async function contextEndpoint(
  name: string,
  configDir: string | undefined,
  source: string,
): Promise<DockerEndpoint> {
  const hint = "List contexts with: docker context ls (switch with: docker context use default)";
  if (!configDir) throw new DbgError(`Docker context ${name} not found: HOME is not set`, { hint });
  const bytes = new TextEncoder().encode(name);
  const hash = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const metaPath = `${configDir}/contexts/meta/${hash}/meta.json`;
  let meta: { Endpoints?: { docker?: { Host?: unknown } } };
  try {
    meta = JSON.parse(await Deno.readTextFile(metaPath));
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound ? `no ${metaPath}` : String(err);
    throw new DbgError(`Docker context ${name} not found: ${why}`, { hint, cause: err });
  }
  const host = meta?.Endpoints?.docker?.Host;
  if (typeof host !== "string" || !host) {
    throw new DbgError(`Docker context ${name} has no Docker endpoint (${metaPath})`, { hint });
  }
  // A context keeps its TLS material in contexts/tls/<hash>/docker/.
  let tls = false;
  try {
    tls = (await Deno.stat(`${configDir}/contexts/tls/${hash}/docker`)).isDirectory;
  } catch {
    // no TLS material
  }
  return parseDockerHost(host, { from: source, tls });
}

/**
 * The error for a failed `Deno.connect` to the engine, with a hint matched to the cause:
 * missing socket, permission denied (docker group, root's Podman), refused (not running).
 * `engine` names the service and how to start it.
 */
export function cannotConnect(
  engine: { service: string; cli: string; start: string },
  endpoint: DockerEndpoint,
  err: unknown,
): EngineUnreachable {
  const where = `Cannot connect to ${engine.service} at ${describe(endpoint)}`;
  const make = (detail: string, hint: string) =>
    new EngineUnreachable(where, detail, { hint, cause: err });
  if (err instanceof Deno.errors.NotFound && endpoint.kind === "unix") {
    return make("no such socket", engine.start);
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return make(
      "permission denied",
      engine.cli === "podman"
        ? "Run with sudo for root's containers; your own are on your rootless socket (systemctl --user start podman.socket)"
        : "Run with sudo, or add your user to the docker group",
    );
  }
  if (err instanceof Deno.errors.NotCapable) {
    return make(
      "Deno permission missing",
      endpoint.kind === "unix"
        ? `Run dbg with --allow-read=${endpoint.path} --allow-write=${endpoint.path} (or --allow-all)`
        : `Run dbg with --allow-net=${endpoint.hostname}:${endpoint.port} (or --allow-all)`,
    );
  }
  if (err instanceof Deno.errors.ConnectionRefused) {
    return make("connection refused", `Is ${engine.service} running? ${engine.start}`);
  }
  return make(err instanceof Error ? err.message : String(err), engine.start);
}
