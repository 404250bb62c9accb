/**
 * A registry on loopback that lies: a fault no real registry produces on purpose, so the one
 * fake the tests allow here. It serves one small, true image (static busybox as /bin/sh) over
 * https (its own CA, which dbg trusts through DENO_CERT) and over plain HTTP, and repositories
 * that each lie in one way:
 *
 * - `good`: the true image, by any tag, and by any digest (so a pinned digest is a lie);
 * - `diffid`: a config whose diff id is not its layer's content;
 * - `size`: a manifest that declares its layer shorter than it is (a layer of its own);
 * - `sizeheld`: the same lie about the true image's layer, which containerd then holds;
 * - `redirect`: blobs redirected from https to the plain-HTTP port;
 * - `realm`: a token service on the plain-HTTP port, which records any credentials it gets;
 * - `escape`: a layer (the other one) whose media type holds a terminal escape sequence;
 * - `slow`: the true image, whose manifest waits for `slow.release()`.
 *
 * @module
 */

import { sha256 } from "../../runtimes/registry/client.ts";
import { sh } from "./dockerd.ts";

/** A running hostile registry. */
export interface HostileRegistry {
  /** `127.0.0.1:PORT` of its https side. */
  addr: string;
  /** PEM file of the CA that signed its certificate (for DENO_CERT). */
  caFile: string;
  /** The true image's manifest digest. */
  manifestDigest: string;
  /** The Authorization headers the token service got (none, if dbg behaves). */
  tokenAuthorizations: string[];
  /** The gate of repository `slow`: `requested` resolves when its manifest is asked for. */
  slow: { requested: Promise<void>; release(): void };
  stop(): Promise<void>;
}

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";

async function run(cmd: string[]): Promise<void> {
  const r = await sh(cmd);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
}

/** A CA and a certificate for 127.0.0.1 signed by it, in `dir`. */
async function certificates(dir: string): Promise<{ cert: string; key: string; ca: string }> {
  const ca = `${dir}/ca.crt`;
  await run([
    ...["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"],
    ...["-subj", "/CN=dbg hostile registry CA", "-keyout", `${dir}/ca.key`, "-out", ca],
  ]);
  await run([
    ...["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"],
    ...["-keyout", `${dir}/srv.key`, "-out", `${dir}/srv.csr`],
  ]);
  await Deno.writeTextFile(`${dir}/ext`, "subjectAltName=IP:127.0.0.1\n");
  await run([
    ...["openssl", "x509", "-req", "-in", `${dir}/srv.csr`, "-CA", ca, "-CAkey", `${dir}/ca.key`],
    ...["-CAcreateserial", "-days", "1", "-extfile", `${dir}/ext`, "-out", `${dir}/srv.crt`],
  ]);
  return {
    cert: await Deno.readTextFile(`${dir}/srv.crt`),
    key: await Deno.readTextFile(`${dir}/srv.key`),
    ca,
  };
}

/**
 * A layer of static busybox and its applets in /bin, plus `extra` in /extra when given (a
 * different layer); gzip'd tar and its diff id.
 */
async function layer(
  dir: string,
  extra = "",
): Promise<{ gz: Uint8Array<ArrayBuffer>; diffId: string }> {
  await Deno.mkdir(`${dir}/root/bin`, { recursive: true });
  await Deno.copyFile("/bin/busybox", `${dir}/root/bin/busybox`);
  await Deno.chmod(`${dir}/root/bin/busybox`, 0o755);
  const applets = (await sh(["/bin/busybox", "--list"])).stdout.split("\n").filter(Boolean);
  for (const a of applets.filter((a) => a !== "busybox")) {
    await Deno.symlink("busybox", `${dir}/root/bin/${a}`);
  }
  const paths = ["bin"];
  if (extra) {
    await Deno.writeTextFile(`${dir}/root/extra`, extra);
    paths.push("extra");
  }
  await run([
    "tar",
    "--owner=0",
    "--group=0",
    "-C",
    `${dir}/root`,
    "-cf",
    `${dir}/layer.tar`,
    ...paths,
  ]);
  const tar = await Deno.readFile(`${dir}/layer.tar`);
  await run(["gzip", "-n", "-k", `${dir}/layer.tar`]);
  return { gz: await Deno.readFile(`${dir}/layer.tar.gz`), diffId: await sha256(tar) };
}

/** Starts the registry on two loopback ports. */
export async function startHostileRegistry(): Promise<HostileRegistry> {
  const dir = await Deno.makeTempDir({ prefix: "dbg-hostile-" });
  const certs = await certificates(dir);
  const { gz, diffId } = await layer(`${dir}/true`);
  const other = await layer(`${dir}/other`, "another layer\n");
  const arch = Deno.build.arch === "aarch64" ? "arm64" : "amd64";
  const blobs = new Map<string, Uint8Array<ArrayBuffer>>();
  const put = async (data: Uint8Array<ArrayBuffer>) => {
    const digest = await sha256(data);
    blobs.set(digest, data);
    return { digest, size: data.length };
  };
  const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const config = (ids: string[]) =>
    put(
      json({
        architecture: arch,
        os: "linux",
        config: {},
        rootfs: { type: "layers", diff_ids: ids },
      }),
    );
  const layerDesc = { mediaType: OCI_LAYER, ...await put(gz) };
  const manifest = (cfg: { digest: string; size: number }, layers: unknown[]) =>
    json({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...cfg },
      layers,
    });
  const goodConfig = await config([diffId]);
  const otherDesc = { mediaType: OCI_LAYER, ...await put(other.gz) };
  const otherConfig = await config([other.diffId]);
  const fakeId = `sha256:${"e".repeat(64)}`;
  const manifests: Record<string, Uint8Array<ArrayBuffer>> = {
    good: manifest(goodConfig, [layerDesc]),
    diffid: manifest(await config([fakeId]), [layerDesc]),
    size: manifest(otherConfig, [{ ...otherDesc, size: otherDesc.size - 100 }]),
    sizeheld: manifest(goodConfig, [{ ...layerDesc, size: layerDesc.size - 100 }]),
    redirect: manifest(goodConfig, [layerDesc]),
    realm: manifest(goodConfig, [layerDesc]),
    slow: manifest(goodConfig, [layerDesc]),
    escape: manifest(otherConfig, [{
      ...otherDesc,
      mediaType: "application/x\u001b]0;pwned\u0007",
    }]),
  };
  for (const m of Object.values(manifests)) await put(m);

  const tokenAuthorizations: string[] = [];
  let plainPort = 0;
  const requested = Promise.withResolvers<void>();
  const released = Promise.withResolvers<void>();
  const handler = (secure: boolean) => async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    if (url.pathname === "/token") {
      const auth = req.headers.get("authorization");
      if (auth) tokenAuthorizations.push(auth);
      return auth ? Response.json({ token: "tok" }) : new Response("no", { status: 401 });
    }
    if (url.pathname === "/v2/") return new Response("{}");
    const m = /^\/v2\/(\w+)\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
    if (!m) return new Response("not found", { status: 404 });
    const [, repo, kind, ref] = m;
    if (repo === "realm" && req.headers.get("authorization") !== "Bearer tok") {
      return new Response("login", {
        status: 401,
        headers: {
          "www-authenticate":
            `Bearer realm="http://127.0.0.1:${plainPort}/token",service="hostile"`,
        },
      });
    }
    if (kind === "manifests" && repo === "slow") {
      requested.resolve();
      await released.promise;
    }
    if (kind === "manifests") {
      const body = manifests[repo];
      return body
        ? new Response(body, { headers: { "content-type": OCI_MANIFEST } })
        : new Response("unknown", { status: 404 });
    }
    if (repo === "redirect" && secure) {
      return Response.redirect(`http://127.0.0.1:${plainPort}${url.pathname}`, 307);
    }
    const blob = blobs.get(ref);
    return blob ? new Response(blob) : new Response("unknown", { status: 404 });
  };
  const ac = new AbortController();
  const listen = (extra: Record<string, string>, secure: boolean) =>
    Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {}, ...extra },
      handler(secure),
    );
  const plain = listen({}, false);
  plainPort = plain.addr.port;
  const tls = listen({ cert: certs.cert, key: certs.key }, true);
  return {
    addr: `127.0.0.1:${tls.addr.port}`,
    caFile: certs.ca,
    manifestDigest: await sha256(manifests.good),
    tokenAuthorizations,
    slow: { requested: requested.promise, release: () => released.resolve() },
    async stop() {
      released.resolve();
      ac.abort();
      await Promise.all([plain.finished, tls.finished]);
      await Deno.remove(dir, { recursive: true });
    },
  };
}
