/**
 * Execs into a dbg container of a pod, over the channel protocol: the short scripts that signal
 * a session (Kubernetes cannot signal an ephemeral container), and dbg's lifeline (lib/kill.ts).
 *
 * @module
 */

import type { Lifeline } from "../../lib/adapter.ts";
import { lifelineArgv } from "../../lib/kill.ts";
import type { Kube } from "./api.ts";
import { ChannelSocket, refusal, STDIN } from "./channel.ts";

/** Where the container is. */
export interface ExecPlace {
  kube: Kube;
  namespace: string;
  pod: string;
  debug: (msg: string) => void;
}

/** Run a short script in `container`, and wait for its end. */
export async function runScript(o: ExecPlace, container: string, script: string): Promise<void> {
  const socket = await openExec(o, container, ["sh", "-c", script], false);
  socket.output.pipeTo(new WritableStream()).catch(() => {});
  const st = await socket.closed;
  if (st && st.status !== "Success") o.debug(`exec status: ${JSON.stringify(st)}`);
}

/**
 * dbg's lifeline: an exec whose stdin is this socket. When dbg is gone the API server closes
 * the stream, and the kubelet the exec's stdin.
 */
export async function openLifeline(o: ExecPlace, container: string): Promise<Lifeline> {
  const socket = await openExec(o, container, lifelineArgv(), true);
  socket.output.pipeTo(new WritableStream()).catch(() => {});
  return {
    write: (data) => Promise.resolve(socket.send(STDIN, data)),
    close: () => socket.close(),
  };
}

async function openExec(
  o: ExecPlace,
  container: string,
  argv: string[],
  stdin: boolean,
): Promise<ChannelSocket> {
  const q = new URLSearchParams({ container, stdout: "true", stderr: "true" });
  if (stdin) q.set("stdin", "true");
  for (const a of argv) q.append("command", a);
  const target = await o.kube.socket(o.namespace, o.pod, "exec", q);
  try {
    return await ChannelSocket.open(target);
  } catch (e) {
    throw new Error(`exec into ${container}: ${refusal(e)}`, { cause: e });
  }
}
