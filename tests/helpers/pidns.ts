/**
 * What lives in a target's PID namespace, read from the host's /proc: the processes a session
 * may have left there, and zombies.
 *
 * @module
 */

/** One process: pid, name, state letter and parent, as `/proc/<pid>/status` tells. */
export interface Proc {
  pid: number;
  name: string;
  state: string;
  ppid: number;
}

/** The processes in the PID namespace of host process `pid`, except `pid` itself. */
export async function othersInPidNamespace(pid: number): Promise<Proc[]> {
  const ns = await Deno.readLink(`/proc/${pid}/ns/pid`);
  const out: Proc[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === pid) continue;
    try {
      if (await Deno.readLink(`/proc/${e.name}/ns/pid`) !== ns) continue;
      const status = await Deno.readTextFile(`/proc/${e.name}/status`);
      const field = (k: string) => status.match(new RegExp(`^${k}:\\s*(.*)$`, "m"))?.[1] ?? "?";
      out.push({
        pid: Number(e.name),
        name: field("Name"),
        state: field("State"),
        ppid: Number(field("PPid")),
      });
    } catch {
      // gone
    }
  }
  return out;
}

/** One line per process, for assertion messages. */
export function describeProcs(procs: Proc[]): string[] {
  return procs.map((p) => `${p.pid} ${p.name} ${p.state} ppid=${p.ppid}`);
}
