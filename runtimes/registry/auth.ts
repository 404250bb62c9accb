/**
 * Registry credentials for pulls, shared by the runtimes that pull (the Docker daemon takes them
 * as a header, dbg's own containerd pull uses them itself): the `X-Registry-Auth` header built
 * from `~/.docker/config.json` (`auths`, `credsStore`, `credHelpers`) the way the docker CLI does.
 *
 * @module
 */

import { dockerConfigDir, readDockerConfig } from "./docker_config.ts";
import { DbgError } from "../../lib/errors.ts";
import { HUB, parseImageRef } from "../../images/ref.ts";

const HUB_SERVER = "https://index.docker.io/v1/";
const HUB_HOSTS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

type AuthEntry = { auth?: string; identitytoken?: string; username?: string; password?: string };
type DockerConfig = {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
};

/** `https://host:5000/v1/` → `host:5000`, as the docker CLI normalises config keys. */
function keyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, "").split("/")[0].toLowerCase();
}

/** The config key for a registry: exact forms first, then any key naming the same host. */
function findKey(obj: Record<string, unknown> | undefined, registry: string): string | undefined {
  if (!obj || typeof obj !== "object") return undefined;
  const exact = registry === HUB
    ? [HUB_SERVER, "index.docker.io", HUB]
    : [registry, `https://${registry}`, `http://${registry}`];
  const found = exact.find((k) => k in obj);
  if (found) return found;
  const hosts = registry === HUB ? HUB_HOSTS : new Set([registry.toLowerCase()]);
  return Object.keys(obj).find((k) => hosts.has(keyHost(k)));
}

/** base64url with padding kept, like Go's `base64.URLEncoding` (what the daemon decodes). */
function encodeAuth(value: Record<string, string>): string {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_");
}

/**
 * Builds the `X-Registry-Auth` header for pulling `imageRef`, from `${DOCKER_CONFIG:-~/.docker}/config.json`:
 * `credHelpers[registry]` or `credsStore` (runs `docker-credential-<name> get`), else
 * `auths[registry]`. Returns undefined when nothing is configured (anonymous pull).
 * Secrets never appear in errors.
 *
 * @example
 * ```ts
 * const auth = await registryAuthHeader("ghcr.io/acme/debug:1", { env: Deno.env.get });
 * const headers = auth ? { "X-Registry-Auth": auth } : {};
 * ```
 */
export async function registryAuthHeader(
  imageRef: string,
  opts: {
    env: (k: string) => string | undefined;
    home?: string;
    run?: (helper: string, serverUrl: string) => Promise<string>;
  },
): Promise<string | undefined> {
  const { registry } = parseImageRef(imageRef);
  const dir = dockerConfigDir(opts.env, opts.home);
  if (!dir) return undefined;
  const read = await readDockerConfig(dir);
  // Like the docker CLI: no usable config means an anonymous pull.
  if (!read.config) return undefined;
  const config = read.config as DockerConfig;
  const configPath = read.path;
  const server = registry === HUB ? HUB_SERVER : registry;
  const helperKey = findKey(config.credHelpers, registry);
  const helper = helperKey ? config.credHelpers![helperKey] : config.credsStore;
  if (typeof helper === "string" && helper) {
    const creds = await fromHelper(helper, server, { configPath, run: opts.run ?? runHelper });
    if (creds) return encodeAuth({ ...creds, serveraddress: server });
  }
  const authKey = findKey(config.auths, registry);
  const entry = authKey ? config.auths![authKey] : undefined;
  if (!entry || typeof entry !== "object") return undefined;
  if (entry.identitytoken) {
    return encodeAuth({ identitytoken: entry.identitytoken, serveraddress: server });
  }
  let { username, password } = entry;
  if (entry.auth) {
    let decoded: string;
    try {
      decoded = new TextDecoder().decode(Uint8Array.from(atob(entry.auth), (c) => c.charCodeAt(0)));
    } catch {
      decoded = "";
    }
    const sep = decoded.indexOf(":");
    if (sep < 0) {
      throw new DbgError(
        `Bad credentials for ${authKey} in ${configPath}: auth is not user:password`,
        {
          hint: `Log in again: docker login ${registry === HUB ? "" : registry}`.trim(),
        },
      );
    }
    [username, password] = [decoded.slice(0, sep), decoded.slice(sep + 1)];
  }
  if (!username && !password) return undefined;
  return encodeAuth({ username: username ?? "", password: password ?? "", serveraddress: server });
}

/** Runs a credential helper; undefined when it has no credentials for `server`. */
async function fromHelper(
  helper: string,
  server: string,
  opts: { configPath: string; run: (helper: string, serverUrl: string) => Promise<string> },
): Promise<Record<string, string> | undefined> {
  const name = `docker-credential-${helper}`;
  const hint =
    `Check ${name} (try: echo ${server} | ${name} get), or fix credsStore/credHelpers in ${opts.configPath}`;
  if (!/^[\w.-]+$/.test(helper)) {
    throw new DbgError(`Bad credential helper name: ${helper}`, { hint });
  }
  let out: string;
  try {
    out = await opts.run(helper, server);
  } catch (err) {
    if (err instanceof DbgError) throw err;
    const text = err instanceof Error ? err.message : String(err);
    // The helper protocol's fixed message for "no entry": pull anonymously, as docker does.
    if (/credentials not found/i.test(text)) return undefined;
    const detail = text.split("\n")[0].slice(0, 200);
    throw new DbgError(`Credential helper ${name} failed for ${server}: ${detail}`, {
      hint,
      cause: err,
    });
  }
  let parsed: { Username?: unknown; Secret?: unknown };
  try {
    parsed = JSON.parse(out);
  } catch {
    // Do not echo the output: it may hold the secret.
    throw new DbgError(`Credential helper ${name} gave invalid output for ${server}`, { hint });
  }
  const user = typeof parsed?.Username === "string" ? parsed.Username : "";
  const secret = typeof parsed?.Secret === "string" ? parsed.Secret : "";
  if (!secret) return undefined;
  return user === "<token>" ? { identitytoken: secret } : { username: user, password: secret };
}

/** Runs `docker-credential-<helper> get` with the server URL on stdin; returns its stdout. */
async function runHelper(helper: string, serverUrl: string): Promise<string> {
  const name = `docker-credential-${helper}`;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(name, {
      args: ["get"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    throw new DbgError(`Credential helper ${name} not found on PATH`, {
      hint: `Install ${name}, or remove credsStore/credHelpers from ~/.docker/config.json`,
      cause: err,
    });
  }
  const writer = child.stdin.getWriter();
  try {
    await writer.write(new TextEncoder().encode(serverUrl));
    await writer.close();
  } catch {
    // the helper exited without reading stdin; its exit status tells why
  }
  const { code, stdout, stderr } = await child.output();
  const text = (s: Uint8Array) => new TextDecoder().decode(s).trim();
  // On failure the protocol puts the error message on stdout (never the secret).
  if (code !== 0) throw new Error(text(stdout) || text(stderr) || `exit code ${code}`);
  return text(stdout);
}
