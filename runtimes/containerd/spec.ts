/**
 * The OCI runtime spec of a containerd sidecar, built from the plan (protocols.md §2.8). It
 * joins the target task's namespaces by path and keeps its own mount namespace, so it has its
 * own root (the debugger image) while seeing the target's processes and network.
 *
 * @module
 */

import type { TargetFacts } from "../../lib/adapter.ts";
import { capsFacts, type DebugPlan } from "../../lib/plan.ts";
import { defaultSeccomp } from "./seccomp.ts";

/** containerd's default capabilities for a container. */
const DEFAULT_CAPS = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** Every capability, by its number. */
const ALL_CAPS = ("CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP " +
  "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE " +
  "SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME " +
  "SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG " +
  "WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE").split(" ")
  .map((c) => `CAP_${c}`);

/**
 * The capabilities of --privileged: every one the host lets containerd give, which is what
 * this process, root on the same host, may hold (its bounding set; all where unreadable). A
 * sandboxed host may lack some, and runc refuses a spec that names one.
 */
function privilegedCaps(): string[] {
  const bound = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readStatus())?.[1];
  if (!bound) return ALL_CAPS;
  const bits = BigInt(`0x${bound}`);
  return ALL_CAPS.filter((_, i) => (bits >> BigInt(i)) & 1n);
}

function readStatus(): string {
  try {
    return Deno.readTextFileSync("/proc/self/status");
  } catch {
    return "";
  }
}

/** `TargetFacts.caps` of a task whose effective set is `effective`: its difference to the defaults. */
export function capsDelta(effective: string[]): TargetFacts["caps"] {
  return capsFacts(
    effective.filter((c) => !DEFAULT_CAPS.includes(c)),
    DEFAULT_CAPS.filter((c) => !effective.includes(c)),
  );
}

const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The spec, as JSON-ready data. `hostPid` is the target task's PID on the host. */
export function sidecarSpec(
  plan: DebugPlan,
  o: { hostPid: number; namespace: string; id: string; imageEnv?: string[] },
): Record<string, unknown> {
  const s = plan.sidecar;
  const dropAll = s.capDrop.includes("ALL");
  const caps = s.privileged ? privilegedCaps() : [
    ...DEFAULT_CAPS.filter((c) => !dropAll && !s.capDrop.includes(c.slice(4))),
    ...s.capAdd.map((c) => `CAP_${c}`),
  ];
  const [uid, gid] = (s.user ?? "0").split(":").map(Number);
  const ns = (type: string, file: string) => ({ type, path: `/proc/${o.hostPid}/ns/${file}` });
  return {
    ociVersion: "1.0.2-dev",
    process: {
      terminal: s.tty,
      user: { uid: uid || 0, gid: gid || 0 },
      args: s.argv,
      env: [...(o.imageEnv ?? [DEFAULT_PATH]), ...s.env],
      cwd: "/",
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: !s.privileged,
    },
    root: { path: "rootfs" },
    mounts: [
      {
        destination: "/proc",
        type: "proc",
        source: "proc",
        options: ["nosuid", "noexec", "nodev"],
      },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
      },
      {
        destination: "/dev/shm",
        type: "tmpfs",
        source: "shm",
        options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
      },
      {
        destination: "/dev/mqueue",
        type: "mqueue",
        source: "mqueue",
        options: ["nosuid", "noexec", "nodev"],
      },
      {
        destination: "/sys",
        type: "sysfs",
        source: "sysfs",
        options: ["nosuid", "noexec", "nodev", "ro"],
      },
      {
        destination: "/run",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
    ],
    linux: {
      namespaces: [
        ns("pid", "pid"),
        ns("network", "net"),
        ...(s.join.ipc ? [ns("ipc", "ipc")] : []),
        ns("uts", "uts"),
        { type: "mount" },
      ],
      cgroupsPath: `/${o.namespace}/${o.id}`,
      // The runtime's default profile, as Docker gives its sidecars; none with --privileged.
      ...(s.privileged ? {} : { seccomp: defaultSeccomp(caps) }),
      resources: { devices: [{ allow: false, access: "rwm" }] },
      maskedPaths: s.privileged ? [] : [
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
      ],
      readonlyPaths: s.privileged ? [] : [
        "/proc/asound",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
      ],
    },
  };
}
