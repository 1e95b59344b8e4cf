/**
 * The agent's side of supervise in a real bottle: the MCP client fixture (fixtures/mcp-call.mjs)
 * copied into the agent, and a tool call made through it from inside, as the agent would.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { TestBottles } from "./bottles.js";

/** Where the agent reaches its bundle's supervise server. */
export const SUPERVISE_MCP = "http://supervise:9100/mcp";
const CLIENT = "/tmp/mcp-call.mjs";

/** Copies the MCP client fixture into the bottle's agent. */
export async function installMcpClient(t: TestBottles, slug: string): Promise<void> {
  const script = await readFile(join(import.meta.dirname, "../fixtures/mcp-call.mjs"));
  const copied = await t.sh(slug, `echo ${script.toString("base64")} | base64 -d > ${CLIENT}`);
  assert.equal(copied.code, 0, copied.stderr);
}

/** A tool call from inside the bottle; its one-line result (the call must not fail). */
export async function callTool(
  t: TestBottles,
  slug: string,
  tool: string,
  args: Record<string, unknown> = {},
): Promise<string> {
  const r = await t.cli(
    ["exec", slug, "--", "node", CLIENT, SUPERVISE_MCP, tool, JSON.stringify(args)],
    120_000,
  );
  assert.equal(r.code, 0, `${tool}: ${r.stderr}`);
  return r.stdout.trim();
}

/** The tools the agent's MCP server lists, one per line. */
export async function listTools(t: TestBottles, slug: string): Promise<string[]> {
  const r = await t.cli(["exec", slug, "--", "node", CLIENT, SUPERVISE_MCP, "--list"]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split("\n");
}

/** The request id a tool's result names ("pending: request r-… …"). */
export function requestIdOf(result: string): string {
  return /\b(r-[a-z0-9]{10})\b/.exec(result)?.[1] ?? "";
}

/**
 * curl from inside the bottle to https://HOST/: the HTTP status (a refused CONNECT's own, as it
 * has no response of its own) and the proxy's refusal tag, if it refused.
 */
export async function curlFrom(
  t: TestBottles,
  slug: string,
  host: string,
): Promise<{ status: string; tag: string }> {
  const r = await t.sh(
    slug,
    `curl -s -o /dev/null -D /tmp/h -w '%{http_code} %{http_connect}' https://${host}/; echo; grep -i '^x-bot-bottle-refusal' /tmp/h | tr -d '\\r' | cut -d' ' -f2`,
  );
  const [codes = "", tag = ""] = r.stdout.trim().split("\n");
  const [code = "", connect = ""] = codes.split(" ");
  return { status: code === "000" ? connect : code, tag };
}
