/**
 * Where the git gate's hooks run: inside the gate's own daemon, which has the config validated
 * and its modules loaded. git daemon's access hook and the mirrors' pre-receive hook are thin
 * clients (images/bundle/git-gate-hooks/gate-hook.pl) that send their call over a unix socket in
 * the gate's private home and print the answer, so a push or fetch pays for no process start
 * beyond perl's.
 *
 * The call: NUL-terminated key and value pairs (`hook`, `cwd`, one `arg` per argument, one `env`
 * per quarantine variable as NAME=VALUE), an empty key, then the hook's standard input to the end
 * of the stream. The answer: frames `o<n>\n<n bytes>` (stdout) and `e<n>\n<n bytes>` (stderr),
 * then `x<code>\n`. Only the gate's user can open the socket; a call is still checked (a declared
 * mirror, quarantine paths inside it) before it is handled.
 */
import { chmodSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { relative, resolve, sep } from "node:path";
import type { GitGateConfig } from "../../shared/git-gate-config.js";
import { MIRRORS } from "./gate.js";

/** One hook run, as the daemon handles it. */
export interface HookCall {
  config: GitGateConfig;
  args: string[];
  /** The repository the hook runs in: a mirror (pre-receive), or the daemon's cwd (access). */
  cwd: string;
  /** The quarantine receive-pack set up (pre-receive): where the pushed objects are. */
  quarantine: Record<string, string>;
  stdin: Buffer;
  /** What the hook prints: the agent's git shows it. */
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export type HookHandler = (call: HookCall) => Promise<number>;

/** The variables receive-pack sets for a hook to see the pushed objects; nothing else is taken. */
const QUARANTINE = [
  "GIT_OBJECT_DIRECTORY",
  "GIT_ALTERNATE_OBJECT_DIRECTORIES",
  "GIT_QUARANTINE_PATH",
] as const;

const MAX_HEAD = 64 * 1024;
/** A pre-receive's input is one line per ref (≈ 100 bytes): room for tens of thousands. */
const MAX_INPUT = 8 * 1024 * 1024;

interface RawCall {
  hook: string;
  cwd: string;
  args: string[];
  env: Record<string, string>;
  stdin: Buffer;
}

/** The call a client sent, or why it is not one. */
export function parseCall(data: Buffer): RawCall | string {
  const call: RawCall = { hook: "", cwd: "", args: [], env: {}, stdin: Buffer.alloc(0) };
  let at = 0;
  const token = (): string | undefined => {
    const end = data.indexOf(0, at);
    if (end < 0 || end > MAX_HEAD) return undefined;
    const text = data.subarray(at, end).toString("utf8");
    at = end + 1;
    return text;
  };
  for (;;) {
    const key = token();
    if (key === undefined) return "the call's head is unterminated or too long";
    if (key === "") break;
    const value = token();
    if (value === undefined) return "the call's head is unterminated or too long";
    if (key === "hook") call.hook = value;
    else if (key === "cwd") call.cwd = value;
    else if (key === "arg") call.args.push(value);
    else if (key === "env") {
      const eq = value.indexOf("=");
      const name = value.slice(0, eq);
      if (eq < 1 || !(QUARANTINE as readonly string[]).includes(name))
        return `the call sets a variable the gate does not take`;
      call.env[name] = value.slice(eq + 1);
    } else return `the call has an unknown field`;
  }
  call.stdin = data.subarray(at);
  return call;
}

/** Whether `path` (resolved from `base`) is `root` or inside it. */
function inside(root: string, path: string, base: string): boolean {
  const rel = relative(root, resolve(base, path));
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !rel.startsWith(sep));
}

/**
 * The quarantine of a pre-receive call, checked: every path in it lies inside the mirror's own
 * object store, so the gate never reads objects from anywhere else.
 */
export function checkQuarantine(cwd: string, env: Record<string, string>): string | undefined {
  const mirror = resolve(cwd);
  if (!inside(MIRRORS, mirror, "/") || mirror === resolve(MIRRORS))
    return "the hook does not run in a mirror";
  const objects = resolve(mirror, "objects");
  for (const name of QUARANTINE) {
    const value = env[name];
    if (value === undefined) continue;
    const paths = name === "GIT_ALTERNATE_OBJECT_DIRECTORIES" ? value.split(":") : [value];
    if (paths.some((p) => p === "" || !inside(objects, p.replace(/^"|"$/g, ""), mirror)))
      return `${name} lies outside the mirror's objects`;
  }
  return undefined;
}

/**
 * Serves the hooks on a unix socket at `path` (mode 0600). Each call gets `handlers[hook]`; an
 * unknown hook, a malformed call or a handler that throws answers exit 1 with a line saying so.
 */
export function serveHooks(
  path: string,
  /** What the gate serves at the moment a call comes (a reload may change it). */
  config: () => GitGateConfig,
  handlers: Record<string, HookHandler>,
  onError: (message: string) => void,
): Promise<Server> {
  rmSync(path, { force: true });
  // Half-open: the client ends its side when its call is sent, and reads the answer after.
  const server = createServer({ allowHalfOpen: true }, (socket) => void answer(socket));

  async function answer(socket: Socket): Promise<void> {
    socket.on("error", () => undefined);
    const frame = (kind: "o" | "e", text: string) => {
      if (text === "" || socket.destroyed) return;
      const bytes = Buffer.from(text, "utf8");
      socket.write(`${kind}${bytes.length}\n`);
      socket.write(bytes);
    };
    const end = (code: number) => {
      if (!socket.destroyed) socket.end(`x${code}\n`);
    };
    const chunks: Buffer[] = [];
    let size = 0;
    const received = await new Promise<Buffer | undefined>((done) => {
      socket.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_HEAD + MAX_INPUT) done(undefined);
        else chunks.push(c);
      });
      socket.on("end", () => done(Buffer.concat(chunks)));
      socket.on("close", () => done(undefined));
    });
    if (!received) {
      frame("e", "bot-bottle git-gate: the hook's call was too long or cut short\n");
      return end(1);
    }
    const call = parseCall(received);
    const hook = typeof call === "string" ? "" : call.hook;
    // What a hook says goes where its caller shows it: git daemon shows an access hook's stdout.
    const say = (text: string) => frame(hook === "access" ? "o" : "e", text);
    const handler = handlers[hook];
    const problem =
      typeof call === "string"
        ? call
        : !handler
          ? "the gate has no such hook"
          : hook === "pre-receive"
            ? checkQuarantine(call.cwd, call.env)
            : undefined;
    if (typeof call === "string" || !handler || problem) {
      onError(`a hook call was refused: ${problem ?? "malformed"}`);
      say(`bot-bottle git-gate: ${problem ?? "malformed call"}\n`);
      return end(1);
    }
    let code = 1;
    try {
      code = await handler({
        config: config(),
        args: call.args,
        cwd: call.cwd,
        quarantine: call.env,
        stdin: call.stdin,
        stdout: (text) => frame("o", text),
        stderr: (text) => frame("e", text),
      });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      onError(`the ${hook} hook failed: ${message}`);
      say(`bot-bottle git-gate: internal error: ${message}\n`);
    }
    end(code);
  }

  return new Promise((ready, fail) => {
    server.once("error", fail);
    server.listen(path, () => {
      chmodSync(path, 0o600);
      server.off("error", fail);
      ready(server);
    });
  });
}
