/**
 * dbg's commands and their options, as data: the parser (cli.ts), the help and the completion
 * scripts (help.ts) all read this one table.
 *
 * @module
 */

import type { RawOptions } from "./options.ts";

/** One option of a subcommand. */
export interface OptSpec {
  long: string;
  short?: string;
  /** Placeholder of the value; absent for a boolean flag. */
  value?: string;
  key: keyof RawOptions | "json" | "help";
  /** For booleans: the value the flag sets (`-T` sets tty=false). */
  sets?: boolean;
  repeat?: boolean;
  help: string;
}

export const HELP: OptSpec = { long: "help", short: "h", key: "help", help: "show this help" };
const DEBUG: OptSpec = { long: "debug", key: "debug", help: "print diagnostics and error details" };

const SESSION_OPTIONS: OptSpec[] = [
  {
    long: "image",
    value: "ref",
    key: "image",
    help: "debugger image: an alias from `dbg images`, nix:pkg,pkg, or any ref",
  },
  { long: "pull", value: "policy", key: "pull", help: "missing (default), always or never" },
  { long: "mode", value: "mode", key: "mode", help: "auto (default), chroot, mount or plain" },
  {
    long: "user",
    short: "u",
    value: "user",
    key: "user",
    help: "run as USER[:GROUP] or UID[:GID] of the target",
  },
  {
    long: "env",
    short: "e",
    value: "NAME[=VALUE]",
    key: "env",
    repeat: true,
    help: "set a variable; NAME alone passes this shell's value (repeatable)",
  },
  {
    long: "workdir",
    short: "w",
    value: "dir",
    key: "workdir",
    help: "start in this directory (default: the target's)",
  },
  {
    long: "profile",
    value: "name",
    key: "profile",
    help: "general (adds SYS_PTRACE), baseline, restricted, netadmin or sysadmin " +
      "(default: general, or what the namespace's Pod Security allows)",
  },
  {
    long: "target-path",
    key: "targetPath",
    help: "also run the target's programs by name (its PATH after the tools')",
  },
  { long: "privileged", key: "privileged", help: "give the sidecar all privileges" },
  {
    long: "interactive",
    short: "i",
    key: "interactive",
    help: "connect stdin without a TTY (pipes)",
  },
  {
    long: "tty",
    short: "t",
    key: "tty",
    sets: true,
    help: "allocate a TTY (default for the shell, when stdin and stdout are terminals)",
  },
  { long: "no-tty", short: "T", key: "tty", sets: false, help: "do not allocate a TTY" },
  { long: "name", value: "name", key: "name", help: "sidecar name (default dbg-<session id>)" },
  { long: "keep", key: "keep", help: "keep the sidecar after exit (for inspection)" },
  { long: "dry-run", key: "dryRun", help: "print the plan as JSON and create nothing" },
  { long: "quiet", short: "q", key: "quiet", help: "no banner and no pull progress" },
  DEBUG,
  HELP,
];

const HOST: OptSpec = { long: "host", short: "H", value: "url", key: "host", help: "" };
const COPY_NETWORK: OptSpec = {
  long: "network",
  value: "net",
  key: "network",
  help: "network of a copy of a target that does not run (default none): host or a name",
};

export interface SubCommand {
  name: string;
  summary: string;
  usage: string;
  options: OptSpec[];
  /** Takes TARGET [COMMAND…]. */
  target: boolean;
  /** Where it connects by default, for the help. */
  defaults?: string;
  /** `command  what it does` lines for the help. */
  examples?: Array<[string, string]>;
}

/** Where a Kubernetes command connects (`dbg k8s`, `dbg gc k8s`). */
const KUBE_CONNECTION: OptSpec[] = [
  {
    long: "namespace",
    short: "n",
    value: "ns",
    key: "namespace",
    help: "the pod's namespace (default: the context's)",
  },
  {
    long: "kubeconfig",
    value: "file",
    key: "kubeconfig",
    help: "kubeconfig file(s), ':'-separated (default: $KUBECONFIG, ~/.kube/config)",
  },
  { long: "context", value: "name", key: "context", help: "kubeconfig context" },
];

const GC_DRY_RUN: OptSpec = {
  long: "dry-run",
  key: "dryRun",
  help: "list what would be removed, remove nothing",
};

/**
 * `dbg [options] TARGET`: no runtime word, so dbg looks the target up on every local engine
 * (runtimes/local.ts). Its name is empty: messages then read `dbg …`.
 */
export const AUTO: SubCommand = {
  name: "",
  summary: "find TARGET on Docker, Podman and containerd, and debug it there",
  usage: "dbg [options] TARGET [--] [COMMAND [ARG...]]",
  defaults: "Looks at the Docker endpoint ($DOCKER_HOST, the docker context), Podman's sockets " +
    "($CONTAINER_HOST, yours and root's) and containerd's ($CONTAINERD_ADDRESS, the usual " +
    "places) in every namespace, at once. Kubernetes only with dbg k8s.",
  examples: [
    ["dbg app", "a shell in app, wherever it runs"],
    ["dbg app -- cat /etc/os-release", "one command; its exit code is dbg's"],
  ],
  options: [COPY_NETWORK, ...SESSION_OPTIONS],
  target: true,
};

/**
 * `dbg attach [RUNTIME] NAME`: join a running session on Docker or Podman. `dbg attach k8s …
 * POD NAME` is `dbg k8s … POD --attach NAME` (cli.ts).
 */
export const ATTACH: SubCommand = {
  name: "attach",
  summary: "join a running dbg session (dbg sessions lists them)",
  usage: "dbg attach [docker|podman] NAME, or dbg attach k8s [options] POD NAME",
  options: SESSION_OPTIONS.filter((o) => ["tty", "quiet", "debug", "help"].includes(o.key)),
  target: true,
};

/** `dbg gc k8s`: dbg's copies and node pods in a namespace whose sessions have ended. */
export const GC_K8S: SubCommand = {
  name: "gc k8s",
  summary: "delete dbg's copies and node pods whose sessions have ended, in a namespace",
  usage: "dbg gc k8s [-n NS] [--kubeconfig FILE] [--context NAME] [--dry-run]",
  options: [...KUBE_CONNECTION, GC_DRY_RUN, DEBUG, HELP],
  target: false,
};

export const COMMANDS: SubCommand[] = [
  {
    name: "docker",
    summary: "debug a Docker container (by name, id or id prefix)",
    usage: "dbg docker [options] TARGET [--] [COMMAND [ARG...]]",
    defaults: "The daemon: -H, else $DOCKER_HOST, else the current docker context, else " +
      "/var/run/docker.sock. TARGET may be image:REF, a throwaway container of an image.",
    examples: [
      ["dbg docker app", "a shell; / is app's filesystem"],
      ["dbg docker app -- cat /etc/os-release", "one command; its exit code is dbg's"],
      ["echo hi | dbg docker app -i -- cat", "pipe stdin to the command"],
      ["dbg docker app --image nix:curl,jq", "tools from nixery.dev (see dbg images)"],
      ["dbg docker image:nginx:1.25", "a throwaway container of an image"],
      ["dbg docker app --dry-run", "print the plan as JSON, create nothing"],
    ],
    options: [
      { ...HOST, help: "Docker endpoint: unix:///path or tcp://host:port" },
      COPY_NETWORK,
      ...SESSION_OPTIONS,
    ],
    target: true,
  },
  {
    name: "podman",
    summary: "debug a Podman container, rootful or rootless (by name, id or id prefix)",
    usage: "dbg podman [options] TARGET [--] [COMMAND [ARG...]]",
    defaults: "The socket: -H, else $CONTAINER_HOST, else your rootless socket " +
      "($XDG_RUNTIME_DIR/podman/podman.sock) if it is there, else /run/podman/podman.sock. " +
      "TARGET may be image:REF.",
    examples: [
      ["dbg podman app", "a shell; / is app's filesystem"],
      ["sudo dbg podman app", "a container of root's Podman"],
      ["dbg podman app -- cat /etc/os-release", "one command; its exit code is dbg's"],
    ],
    options: [
      { ...HOST, help: "Podman socket: unix:///path or tcp://host:port" },
      COPY_NETWORK,
      ...SESSION_OPTIONS,
    ],
    target: true,
  },
  {
    name: "containerd",
    summary: "debug a containerd task (id, id prefix, nerdctl name, or POD/CONTAINER)",
    usage: "dbg containerd [options] TARGET [--] [COMMAND [ARG...]]",
    defaults: "The socket: --address, else $CONTAINERD_ADDRESS, else the usual places " +
      "(containerd's, k3s's, Docker's). Every namespace is searched unless -n names one.",
    examples: [
      ["dbg containerd app", "a task by id, id prefix or nerdctl name"],
      ["dbg containerd -n k8s.io web/api", "a pod's container on a node, by CRI labels"],
      ["dbg containerd --pod-namespace shop web/api", "the same, of pod web in namespace shop"],
    ],
    options: [
      {
        long: "address",
        value: "path",
        key: "host",
        help: "containerd socket (default: $CONTAINERD_ADDRESS, then the usual places)",
      },
      {
        long: "namespace",
        short: "n",
        value: "ns",
        key: "namespace",
        help: "containerd namespace (default: $CONTAINERD_NAMESPACE, else all)",
      },
      {
        long: "pod-namespace",
        value: "ns",
        key: "podNamespace",
        help: "Kubernetes namespace of POD/CONTAINER (CRI labels)",
      },
      {
        long: "insecure-registry",
        value: "host",
        key: "insecureRegistry",
        repeat: true,
        help: "pull from this registry over plain HTTP (localhost always is)",
      },
      {
        long: "network",
        value: "net",
        key: "network",
        help: "network of a copy of a container without a task: none (default) or host",
      },
      ...SESSION_OPTIONS,
    ],
    target: true,
  },
  {
    name: "k8s",
    summary: "debug a pod's container or a node (POD[/CONTAINER], deploy/NAME, node/NAME)",
    usage: "dbg k8s [options] TARGET [--] [COMMAND [ARG...]]",
    defaults: "The cluster: --kubeconfig, else $KUBECONFIG, else ~/.kube/config, else the " +
      "pod's service account; the context's namespace unless -n.",
    examples: [
      ["dbg k8s web", "an ephemeral container in pod web"],
      ["dbg k8s -n shop deploy/web -- ps", "in a running pod of deployment web"],
      ["dbg k8s web -c api --image nixery.dev/shell/curl", "container api, with curl"],
      ["dbg k8s web/api --copy", "a copy of the pod, for a container that crashes"],
      ["dbg k8s node/worker-1", "the node's root filesystem as /"],
    ],
    options: [
      ...KUBE_CONNECTION,
      {
        long: "container",
        short: "c",
        value: "name",
        key: "container",
        help: "the pod's container (default: kubectl's default container)",
      },
      {
        long: "timeout",
        value: "duration",
        key: "timeout",
        help: "how long to wait for the debug container to start (default 2m)",
      },
      {
        long: "sessions",
        key: "sessions",
        help: "list the dbg containers in the pod, running or not",
      },
      {
        long: "attach",
        value: "name",
        key: "attach",
        help: "reattach to a running dbg container of the pod",
      },
      {
        long: "copy",
        key: "copy",
        help: "debug a copy of the pod in which the container runs the debugger's keeper " +
          "(for a container that crashes or has ended)",
      },
      { long: "keep", key: "keep", help: "keep the copy (or node) pod after exit" },
      ...SESSION_OPTIONS.filter((o) => o.key !== "keep" && o.key !== "name"),
    ],
    target: true,
  },
  {
    name: "images",
    summary: "list the built-in debugger image catalog",
    usage: "dbg images [--json]",
    options: [{ long: "json", key: "json", help: "print JSON" }, HELP],
    target: false,
  },
  {
    name: "sessions",
    summary: "list dbg's sidecars and copies on Docker, Podman and containerd",
    usage: "dbg sessions [--json]",
    options: [
      { long: "json", key: "json", help: "print JSON" },
      DEBUG,
      HELP,
    ],
    target: false,
  },
  {
    name: "gc",
    summary: "remove what ended dbg sessions left on Docker, Podman and containerd",
    usage: "dbg gc [--dry-run]",
    options: [
      GC_DRY_RUN,
      DEBUG,
      HELP,
    ],
    target: false,
  },
];
