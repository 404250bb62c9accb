/**
 * A small terminal driver for end-to-end tests: runs a command in a detached tmux pane on a
 * private tmux server (`tmux -L <unique>`, no config file), types keys into it and reads the
 * screen back. Waits poll the screen instead of sleeping for a fixed time.
 *
 * @module
 */

import assert from "node:assert/strict";
import { sh } from "./dockerd.ts";

/** Path of the tmux binary. */
export const TMUX = "tmux";

/** Options for {@link Tty.start}. */
export interface TtyOptions {
  /** Terminal width (default 100). */
  cols?: number;
  /** Terminal height (default 30). */
  rows?: number;
  /** Working directory of the command (default: the current one). */
  cwd?: string;
}

let serial = 0;

/** Quotes one word for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Polls `fn` every 100ms until it returns non-null; throws naming `what` on timeout. */
export async function poll<T>(
  what: string,
  fn: () => Promise<T | null>,
  timeoutMs = 15_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (true) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs}ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A command running on its own terminal inside a private tmux server. */
export class Tty {
  /** The tmux socket name (`tmux -L`). */
  readonly socket: string;
  #killed = false;

  private constructor(socket: string) {
    this.socket = socket;
  }

  /** Starts `cmd` (run by tmux through `$SHELL -c`) on a new cols×rows terminal. */
  static async start(cmd: string, opts: TtyOptions = {}): Promise<Tty> {
    const socket = `dbg-tty-${Deno.pid}-${++serial}`;
    const tty = new Tty(socket);
    // remain-on-exit keeps the screen (and the exit status) readable after the command ends.
    await tty.#tmux([
      ...["start-server", ";", "set-option", "-g", "remain-on-exit", "on", ";"],
      ...["set-option", "-g", "history-limit", "10000", ";"],
      ...["new-session", "-d", "-x", String(opts.cols ?? 100), "-y", String(opts.rows ?? 30)],
      ...["-c", opts.cwd ?? Deno.cwd(), cmd],
    ]);
    return tty;
  }

  async #tmux(args: string[], check = true): Promise<string> {
    const env = Deno.env.toObject();
    delete env.TMUX;
    const r = await sh([TMUX, "-L", this.socket, "-f", "/dev/null", ...args], { env, check });
    return r.stdout;
  }

  /** The screen and its scrollback as text; lines wrapped by the terminal are joined. */
  async screen(): Promise<string> {
    const out = await this.#tmux(["capture-pane", "-p", "-J", "-S", "-"]);
    return out.replace(/\s+$/, "");
  }

  /**
   * Polls the screen until `re` matches it and returns the screen. On timeout, throws with the
   * screen in the message.
   */
  async waitFor(re: RegExp, timeoutMs = 10_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    let last = "";
    while (true) {
      last = await this.screen();
      if (re.test(last)) return last;
      if (Date.now() > end) {
        throw new Error(`timed out after ${timeoutMs}ms waiting for ${re}; screen:\n${last}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Types keys, in tmux `send-keys` syntax: `"echo hi", "Enter"`, `"C-c"`. */
  async send(...keys: string[]): Promise<void> {
    await this.#tmux(["send-keys", ...keys]);
  }

  /** Resizes the terminal (the command gets SIGWINCH). */
  async resize(cols: number, rows: number): Promise<void> {
    await this.#tmux(["resize-window", "-x", String(cols), "-y", String(rows)]);
  }

  /** PID of the pane's process (the command tmux started). */
  async panePid(): Promise<number> {
    return Number((await this.#tmux(["display-message", "-p", "#{pane_pid}"])).trim());
  }

  /** The command's exit status once it has ended, or null while it runs. */
  async exitStatus(): Promise<number | null> {
    const out = await this.#tmux(["display-message", "-p", "#{pane_dead} #{pane_dead_status}"]);
    const [dead, status] = out.trim().split(" ");
    return dead === "1" ? Number(status) : null;
  }

  /** Closes the terminal (the command gets SIGHUP) and stops the tmux server. Idempotent. */
  async kill(): Promise<void> {
    if (this.#killed) return;
    this.#killed = true;
    await this.#tmux(["kill-server"], false);
  }
}

/**
 * A wrapper `…; echo EXIT=$?; stty -a` has run: dbg has exited and `stty -a` has printed the
 * terminal's settings after it.
 */
export const EXITED = /EXIT=\d+[\s\S]*icanon[\s\S]*echoke/;

/** dbg's exit code as the wrapper printed it. */
export function exitOf(screen: string): number {
  const m = screen.match(/EXIT=(\d+)/);
  assert.ok(m, `no EXIT= on the screen:\n${screen}`);
  return Number(m[1]);
}

/** Asserts that the output after `EXIT=` shows a restored (cooked, echoing) terminal. */
export function assertCooked(screen: string): void {
  const after = screen.slice(screen.lastIndexOf("EXIT="));
  assert.match(after, /(^|\s)icanon(\s|$)/m, `icanon after dbg:\n${after}`);
  assert.match(after, /(^|\s)echo(\s|$)/m, `echo after dbg:\n${after}`);
  assert.doesNotMatch(after, /-icanon|(^|\s)-echo(\s|$)/m, `raw mode left on:\n${after}`);
}
