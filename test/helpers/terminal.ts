/**
 * A tmux server of the test's own for end-to-end tests of what bot-bottle draws on a terminal:
 * sessions and windows running the built CLI in the test's workspace with the test's variables,
 * keys sent, and the screen read until it shows what the test waits for.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { run } from "../../src/exec/run.js";
import type { TestBottles } from "./bottles.js";
import { CLI } from "./cli.js";

export class TestTerminal {
  private readonly socket: string;

  /** `passed`: the test's variables the CLI gets (tmux gives a pane its server's environment). */
  constructor(
    private readonly t: TestBottles,
    private readonly passed: readonly string[],
  ) {
    this.socket = `bbterm-${t.id}`;
  }

  tmux(...args: string[]) {
    return run("tmux", ["-L", this.socket, ...args]);
  }

  /**
   * `bot-bottle ARGS` in the workspace, in a new session `at` ("session:window", of `columns` ×
   * `rows`), or a new window of a session that exists; `prefix` goes before the command (`env -u
   * TMUX ` runs it as outside tmux). Once it exits the pane shows `EXITED <status>`.
   */
  async open(
    at: string,
    args: readonly string[],
    options: { columns?: number; rows?: number; prefix?: string; newSession?: boolean } = {},
  ): Promise<string> {
    const [session = "", window = ""] = at.split(":");
    const env = this.passed.flatMap((k) => ["-e", `${k}=${this.t.env[k] ?? ""}`]);
    const command = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(" ");
    const where = options.newSession
      ? [
          "new-session",
          "-d",
          "-s",
          session,
          "-x",
          String(options.columns ?? 120),
          "-y",
          String(options.rows ?? 40),
        ]
      : ["new-window", "-d", "-t", session];
    await this.tmux(
      ...where,
      "-n",
      window,
      "-c",
      this.t.workspace,
      ...env,
      `${options.prefix ?? ""}${command}; echo "EXITED $?"; sleep 3600`,
    );
    return at;
  }

  /** Sends keys (tmux key names, or literal text with `-l` first). */
  async keys(target: string, ...keys: string[]): Promise<void> {
    await this.tmux("send-keys", "-t", target, ...keys);
  }

  /** The pane as it is on screen now, one string per row. */
  async screen(target: string): Promise<string[]> {
    return (await this.tmux("capture-pane", "-p", "-t", target)).stdout
      .replace(/\n$/, "")
      .split("\n");
  }

  /** The pane's text with its last 200 lines of scrollback, wrapped lines joined. */
  async pane(target: string): Promise<string> {
    return (await this.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", target)).stdout;
  }

  /**
   * Waits until the pane shows what `want` matches (on screen, or with `scrollback` in its
   * recent history too); fails with the pane's text.
   */
  async waitFor(
    target: string,
    want: RegExp,
    what: string,
    options: { ms?: number; scrollback?: boolean } = {},
  ): Promise<string> {
    const ms = options.ms ?? 30_000;
    const deadline = Date.now() + ms;
    let text = "";
    while (Date.now() < deadline) {
      text = await (
        options.scrollback ? this.pane(target) : this.screen(target).then((rows) => rows.join("\n"))
      ).catch(() => text);
      if (want.test(text)) return text;
      await sleep(100);
    }
    throw new Error(`${what} did not appear within ${ms / 1000} s; the pane shows:\n${text}`);
  }

  async close(): Promise<void> {
    await this.tmux("kill-server").catch(() => undefined);
  }
}
