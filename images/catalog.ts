/**
 * The built-in debugger image catalog, as plain data, and the pure function that turns what the
 * user typed after `--image` into an image choice. No I/O here.
 *
 * @module
 */

import { parseImageRef } from "./ref.ts";
/** One debugger image and what dbg must know about its tools. */
export interface ImageEntry {
  /** Short alias (`busybox`, `nix`, `netshoot`). */
  name: string;
  /** The image reference pulled for the alias. */
  ref: string;
  /**
   * True when the tools run from any root: statically linked, or (nix) self-contained under
   * `/nix/store` with absolute paths. False for dynamically linked toolkits.
   */
  static: boolean;
  /** True for nixery images, whose tools need `/nix` to resolve (see DESIGN.md). */
  nix: boolean;
  /** The shell inside the image. */
  shell: string;
  /** Where the image keeps its tools; added to PATH after the target's own dirs. */
  toolDirs: string[];
  /** One line for `dbg images`. */
  description: string;
}

/** The image a session will use: a catalog entry, possibly with a derived ref. */
export interface ImageChoice extends ImageEntry {
  /** True when the ref is not in the catalog (the plan then cannot know if tools are static). */
  custom: boolean;
}

const STD_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** The catalog. The first entry is the default. */
export const CATALOG: readonly ImageEntry[] = [
  {
    name: "busybox",
    ref: "busybox:musl",
    static: true,
    nix: false,
    shell: "/bin/sh",
    toolDirs: ["/bin"],
    description: "BusyBox on musl, statically linked: sh, ps, top, ls, vi, wget, nc, ip (default)",
  },
  {
    name: "nix",
    ref: "nixery.dev/shell",
    static: true,
    nix: true,
    shell: "/bin/sh",
    toolDirs: ["/bin"],
    description:
      "nixery.dev: nix:curl,jq gives bash plus those Nix packages (needs /nix, see modes)",
  },
  {
    name: "netshoot",
    ref: "nicolaka/netshoot:latest",
    static: false,
    nix: false,
    shell: "/bin/bash",
    toolDirs: STD_DIRS,
    description: "Network toolkit (tcpdump, dig, curl, iperf, …), dynamically linked: plain mode",
  },
];

/** The static variants of the official busybox image, from Docker Hub or a mirror of it. */
const STATIC_BUSYBOX = /(^|\/)busybox:(musl|uclibc)$/;
const NIX_ALIAS = /^nix:([A-Za-z0-9_.+-]+(,[A-Za-z0-9_.+-]+)*)$/;

/**
 * Resolve `--image` (an alias, `nix:pkg,pkg`, or any image reference) to an image choice.
 *
 * @example
 * ```ts
 * resolveImage("nix:curl,jq").ref; // "nixery.dev/shell/curl/jq"
 * resolveImage(undefined).ref; // "busybox:musl"
 * ```
 */
export function resolveImage(input: string | undefined): ImageChoice {
  const byName = (n: string) => ({ ...CATALOG.find((e) => e.name === n)!, custom: false });
  if (input === undefined || input === "") return byName("busybox");
  const alias = CATALOG.find((e) => e.name === input);
  if (alias) return { ...alias, custom: false };
  const nix = NIX_ALIAS.exec(input);
  if (nix) return { ...byName("nix"), ref: `nixery.dev/shell/${nix[1].split(",").join("/")}` };
  if (input.startsWith("nixery.dev/")) return { ...byName("nix"), ref: input };
  if (STATIC_BUSYBOX.test(input)) return { ...byName("busybox"), ref: input };
  const exact = CATALOG.find((e) => e.ref === input || e.ref === `${input}:latest`);
  if (exact) return { ...exact, ref: input, custom: false };
  return {
    name: "custom",
    ref: input,
    static: false,
    nix: false,
    shell: "/bin/sh",
    toolDirs: STD_DIRS,
    description: "an image given as is",
    custom: true,
  };
}

/**
 * Whether `input` is a usable `--image` value, checked locally with Docker's rules: an error
 * text, or undefined.
 */
export function checkImageInput(input: string): string | undefined {
  if (input.startsWith("nix:")) {
    return NIX_ALIAS.test(input)
      ? undefined
      : `Bad nix image "${input}": use nix:pkg[,pkg…], e.g. nix:curl,jq`;
  }
  try {
    parseImageRef(input);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
