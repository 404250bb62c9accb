/**
 * Syntax checks of dbg's shell scripts with BusyBox's sh (the debugger image's shell), for unit
 * tests.
 *
 * @module
 */

const BUSYBOX = "/bin/busybox";

/**
 * The complaint of `busybox sh -n` about `script`, or "" when it parses. Undefined when BusyBox
 * is missing, outside CI; with CI=true a missing BusyBox throws.
 */
export async function shSyntaxError(script: string): Promise<string | undefined> {
  try {
    await Deno.stat(BUSYBOX);
  } catch {
    if (Deno.env.get("CI") === "true") throw new Error("busybox-static is missing");
    return undefined;
  }
  const out = await new Deno.Command(BUSYBOX, { args: ["sh", "-n", "-c", script], stderr: "piped" })
    .output();
  return out.code === 0 ? "" : new TextDecoder().decode(out.stderr);
}
