/**
 * A private OCI registry (Debian's `docker-registry`, distribution 2.8) on 127.0.0.1, with
 * filesystem storage in a temp dir and optional htpasswd auth.
 *
 * @module
 */

import {
  exists,
  missingPrerequisite,
  pidAlive,
  pidsMentioning,
  type PrivateDockerd,
  sh,
  spawnLogged,
} from "./dockerd.ts";

/** Path of Debian's registry binary. */
export const REGISTRY_BIN = "/usr/bin/docker-registry";
/** Path of htpasswd (apache2-utils). */
export const HTPASSWD_BIN = "/usr/bin/htpasswd";

/** Basic-auth credentials. */
export interface RegistryAuth {
  /** User name. */
  user: string;
  /** Password. */
  password: string;
}

/** A running private registry. */
export interface PrivateRegistry {
  /** `127.0.0.1:PORT`, usable as an image reference prefix. */
  addr: string;
  /** Temp dir holding config, storage and log. */
  dir: string;
  /** Stops the registry and removes its temp dir. */
  stop(): Promise<void>;
}

const DIR_PREFIX = "dbgr-";

/** Kills registries (and removes dirs) left by crashed runs whose owner is gone. */
async function reapStale(): Promise<void> {
  for await (const e of Deno.readDir("/tmp")) {
    if (!e.isDirectory || !e.name.startsWith(DIR_PREFIX)) continue;
    const dir = `/tmp/${e.name}`;
    let owner = 0;
    try {
      owner = parseInt(await Deno.readTextFile(`${dir}/owner.pid`), 10);
    } catch {
      continue; // not ours or still starting
    }
    if (owner > 0 && pidAlive(owner)) continue;
    for (const pid of await pidsMentioning(dir)) Deno.kill(pid, "SIGKILL");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function config(dir: string, addr: string, auth: boolean): string {
  const lines = [
    "version: 0.1",
    "log:",
    "  level: warn",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${dir}/data`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: ${addr}`,
    "  secret: dbg-test-secret",
  ];
  if (auth) {
    lines.push("auth:", "  htpasswd:", "    realm: dbg-test", `    path: ${dir}/htpasswd`);
  }
  return lines.join("\n") + "\n";
}

/** Answers GET /v2/ with 200 or 401? */
async function answers(addr: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${addr}/v2/`, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.status === 200 || res.status === 401;
  } catch {
    return false;
  }
}

async function tryStart(auth: RegistryAuth | undefined): Promise<PrivateRegistry> {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: DIR_PREFIX });
  await Deno.writeTextFile(`${dir}/owner.pid`, `${Deno.pid}\n`);
  if (auth) {
    const r = await sh([HTPASSWD_BIN, "-Bbn", auth.user, auth.password]);
    await Deno.writeTextFile(`${dir}/htpasswd`, r.stdout);
  }
  const addr = `127.0.0.1:${freePort()}`;
  await Deno.writeTextFile(`${dir}/config.yml`, config(dir, addr, auth !== undefined));
  const log = `${dir}/registry.log`;
  const child = spawnLogged([REGISTRY_BIN, "serve", `${dir}/config.yml`], log);
  let exited = false;
  const status = child.status.finally(() => exited = true);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) child.kill("SIGTERM");
    const timer = setTimeout(() => !exited && child.kill("SIGKILL"), 5000);
    await status;
    clearTimeout(timer);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + 15_000;
  while (!await answers(addr)) {
    if (exited || Date.now() > deadline) {
      let logTail = "";
      try {
        logTail = (await Deno.readTextFile(log)).trimEnd().split("\n").slice(-20).join("\n");
      } catch { /* no log */ }
      await stop();
      throw new Error(`registry on ${addr} did not come up; log tail:\n${logTail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { addr, dir, stop };
}

/**
 * Starts a registry on a free loopback port (retrying on a port race), with htpasswd basic auth
 * when `opts.auth` is given. Waits until `GET /v2/` answers 200 or 401.
 */
export async function startRegistry(
  opts: { auth?: RegistryAuth } = {},
): Promise<PrivateRegistry> {
  await reapStale();
  let last: unknown;
  for (let i = 0; i < 3; i++) {
    try {
      return await tryStart(opts.auth);
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

/**
 * Like {@link startRegistry}, but returns null after a warning when `docker-registry` (or, for
 * auth, `htpasswd`) is missing; under `CI=true` it throws instead.
 */
export async function registryOrSkip(
  opts: { auth?: RegistryAuth } = {},
): Promise<PrivateRegistry | null> {
  if (!await exists(REGISTRY_BIN)) {
    return missingPrerequisite(`${REGISTRY_BIN} (apt-get install docker-registry)`);
  }
  if (opts.auth && !await exists(HTPASSWD_BIN)) {
    return missingPrerequisite(`${HTPASSWD_BIN} (apt-get install apache2-utils)`);
  }
  return await startRegistry(opts);
}

/** Logs `d`'s private client config into `addr` (`docker login --password-stdin`). */
export async function dockerLogin(
  d: PrivateDockerd,
  addr: string,
  auth: RegistryAuth,
): Promise<void> {
  await d.docker(["login", "-u", auth.user, "--password-stdin", addr], { stdin: auth.password });
}

/** Removes the credentials for `addr` from `d`'s private client config. */
export async function dockerLogout(d: PrivateDockerd, addr: string): Promise<void> {
  await d.docker(["logout", addr], { check: false });
}

/**
 * Tags `image` as `registryRef` (e.g. `127.0.0.1:5000/busybox:musl`) and pushes it. With `auth`
 * it logs in first and logs out afterwards. The local `registryRef` tag is removed afterwards
 * (unless `keepTag`), so a later pull of `registryRef` really pulls.
 */
export async function pushImage(
  d: PrivateDockerd,
  image: string,
  registryRef: string,
  opts: { auth?: RegistryAuth; keepTag?: boolean } = {},
): Promise<void> {
  const addr = registryRef.split("/")[0];
  await d.docker(["tag", image, registryRef]);
  if (opts.auth) await dockerLogin(d, addr, opts.auth);
  try {
    await d.docker(["push", "--quiet", registryRef]);
  } finally {
    if (opts.auth) await dockerLogout(d, addr);
    if (!opts.keepTag) await d.docker(["rmi", registryRef], { check: false });
  }
}

/**
 * A temp DOCKER_CONFIG dir whose config.json holds basic-auth credentials for `addr`, the way
 * `docker login` writes them. The caller removes it.
 */
export async function dockerConfigFor(addr: string, auth: RegistryAuth): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "dbg-dockercfg-" });
  const b64 = btoa(`${auth.user}:${auth.password}`);
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({ auths: { [addr]: { auth: b64 } } }),
  );
  return dir;
}
