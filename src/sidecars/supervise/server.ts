/**
 * The supervise MCP server: the agent's way to ask the operator for more. Streamable HTTP on
 * plain node:http at /mcp, stateless (each POST is answered on its own, JSON responses, no
 * sessions), which Claude Code and Codex both speak. Four tools: request_egress_route,
 * request_git_repo, ask_operator and request_status. A request is checked before anyone sees it
 * (validate.ts), then waits in the queue (queue.ts) for up to `waitSeconds`; the result is one
 * line the model can act on (results.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { join } from "node:path";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  CallToolRequestSchema,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  type CallToolResult,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import {
  SUPERVISE_AUDIT_FILE,
  SUPERVISE_HEALTH_PATH,
  type SuperviseConfig,
} from "../../shared/supervise.js";
import { visible } from "../../shared/visible.js";
import { listenOn } from "../listen.js";
import { createLogger, type Logger } from "../log.js";
import { RequestQueue } from "./queue.js";
import {
  checkEgressRoute,
  checkGitRepo,
  checkInput,
  checkQuestion,
  TOOL_INPUTS,
  type Checked,
  type ToolName,
} from "./validate.js";

export const MCP_PATH = "/mcp";

/**
 * Host names (any port) a request may carry in its Host header: the bundle's name on the agent's
 * network and the loopback forms (the smolmachines backend publishes the port on the host's
 * loopback). Anything else is refused before the MCP layer sees it (DNS rebinding).
 */
export const ALLOWED_HOSTS: readonly string[] = ["supervise", "localhost", "127.0.0.1", "[::1]"];

/** The largest request body read (a tool call's text is at most a few kilobytes). */
const MAX_BODY = 64 * 1024;

export interface SuperviseOptions {
  config: SuperviseConfig;
  /** The read-only folder the host writes `<id>.json` decisions into. */
  decisionsDir: string;
  /** Where audit/supervise.jsonl is (the bottle's audit folder). */
  auditDir: string;
  /** Default: JSON lines on stdout, component "supervise". */
  log?: Logger;
  /** Default "0.0.0.0". */
  host?: string;
  /** Default `config.port`; 0 picks a free port. */
  port?: number;
  /** How often the decisions folder is read while a request waits; default 250 ms. */
  pollMs?: number;
  /** Default ALLOWED_HOSTS. */
  allowedHosts?: readonly string[];
}

export interface SuperviseServer {
  /** The port it listens on. */
  readonly port: number;
  /** `http://127.0.0.1:<port>/mcp`. */
  readonly url: string;
  /** Stops: waiting tool calls answer (pending) at once, then the server closes. */
  close(): Promise<void>;
}

/** The tools as `tools/list` shows them: each input's JSON Schema comes from its zod schema. */
export function toolList(config: Pick<SuperviseConfig, "waitSeconds">): Tool[] {
  const waits = `waits up to ${config.waitSeconds}s for the operator, then answers "pending" with an id`;
  const descriptions: Record<ToolName, string> = {
    request_egress_route: `Ask the operator to let this bottle reach a host through its proxy (optionally only some paths, methods or a port); never put credentials in it, the operator adds any when approving; ${waits}.`,
    request_git_repo: `Ask the operator to add a git repository this bottle can fetch from and push to through its git gate (the operator supplies the key); ${waits}.`,
    ask_operator: `Ask the operator a question in plain words; their answer comes back as the result; ${waits}.`,
    request_status: `Check on an earlier request by the id a pending result gave; ${waits} again.`,
  };
  return (Object.keys(TOOL_INPUTS) as ToolName[]).map((name) => ({
    name,
    description: descriptions[name],
    inputSchema: z.toJSONSchema(TOOL_INPUTS[name], {
      target: "draft-7",
      io: "input",
    }) as Tool["inputSchema"],
  }));
}

export async function startSupervise(options: SuperviseOptions): Promise<SuperviseServer> {
  const { config } = options;
  const log = options.log ?? createLogger(config.slug, "supervise");
  const allowed = options.allowedHosts ?? ALLOWED_HOSTS;
  const waitMs = config.waitSeconds * 1000;
  const tools = toolList(config);
  const queue = new RequestQueue({
    config,
    auditFile: join(options.auditDir, SUPERVISE_AUDIT_FILE),
    decisionsDir: options.decisionsDir,
    log,
    ...(options.pollMs !== undefined ? { pollMs: options.pollMs } : {}),
  });
  queue.open();

  async function request(
    tool: ToolName,
    checked: Checked,
    input: unknown,
    signal: AbortSignal,
  ): Promise<string> {
    if (!checked.ok) return queue.refuse(tool, checked.reason, input);
    const asked = queue.submit(checked.body, checked.flags, tool, input);
    if ("result" in asked) return asked.result;
    await queue.wait(asked.id, waitMs, signal);
    return queue.result(asked.id);
  }

  async function call(name: string, input: unknown, signal: AbortSignal): Promise<string> {
    switch (name) {
      case "request_egress_route":
        return request(name, checkEgressRoute(input, config), input, signal);
      case "request_git_repo":
        return request(name, checkGitRepo(input, config), input, signal);
      case "ask_operator":
        return request(name, checkQuestion(input), input, signal);
      case "request_status": {
        const read = checkInput(name, input);
        if (!read.ok) return queue.refuse(name, read.reason, input);
        const { id } = read.value;
        if (!queue.has(id))
          return queue.refuse(
            name,
            `there is no request ${id} in this bottle (ids come from a pending result)`,
            input,
          );
        await queue.wait(id, waitMs, signal);
        return queue.result(id);
      }
      default:
        throw new McpError(ErrorCode.InvalidParams, `there is no tool ${visible(name)}`);
    }
  }

  /** One MCP server per HTTP request (stateless): it lives as long as the request does. */
  function mcpServer(): Server {
    const server = new Server(
      { name: "bot-bottle-supervise", version: "1.0.0" },
      {
        capabilities: { tools: {} },
        instructions:
          "Ask the operator of this bottle for what it lacks: a host to reach, a git repository, an answer.",
      },
    );
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools }));
    server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
      const text = await call(req.params.name, req.params.arguments, extra.signal);
      return {
        content: [{ type: "text", text }],
        ...(text.startsWith("refused:") ? { isError: true } : {}),
      };
    });
    return server;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    if (path === SUPERVISE_HEALTH_PATH && (req.method === "GET" || req.method === "HEAD")) {
      send(res, 200, { ok: true });
      return;
    }
    if (path !== MCP_PATH) {
      send(res, 404, { error: "not found: the MCP endpoint is /mcp" });
      return;
    }
    const hostHeader = req.headers.host ?? "";
    if (!allowed.includes(hostName(hostHeader))) {
      log("host-refused", `refused a request for Host ${visible(hostHeader.slice(0, 100))}`);
      sendRpcError(res, 403, -32000, "Forbidden: this Host is not the supervise server's");
      return;
    }
    // Stateless: no session to stream to (GET) or to end (DELETE).
    if (req.method !== "POST") {
      res.setHeader("allow", "POST");
      sendRpcError(res, 405, -32000, "Method not allowed: POST JSON-RPC messages to /mcp");
      return;
    }
    const text = await readBody(req);
    if (text === undefined) {
      res.setHeader("connection", "close");
      sendRpcError(res, 413, -32000, `Request body larger than ${MAX_BODY} bytes`);
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      sendRpcError(res, 400, -32700, "Parse error: Invalid JSON");
      return;
    }
    // A 2026-07-28 client first probes with server/discover and falls back to `initialize` on
    // "method not found": answered here, as this server speaks the 2025 revisions only.
    if (isRequest(body) && body.method === "server/discover") {
      send(res, 200, {
        jsonrpc: "2.0",
        id: body.id,
        error: { code: ErrorCode.MethodNotFound, message: "Method not found" },
      });
      return;
    }
    const server = mcpServer();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  const http = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log("http-error", `answering ${req.method ?? "?"} ${MCP_PATH} failed: ${String(err)}`);
      if (!res.headersSent) sendRpcError(res, 500, -32603, "Internal error");
      else res.destroy();
    });
  });
  const port = await listenOn(http, options.port ?? config.port, options.host ?? "0.0.0.0").catch(
    (err: unknown) => {
      queue.close();
      throw err;
    },
  );

  return {
    port,
    url: `http://127.0.0.1:${port}${MCP_PATH}`,
    close: () =>
      new Promise<void>((resolve) => {
        queue.close();
        http.close(() => resolve());
        http.closeIdleConnections();
        setTimeout(() => http.closeAllConnections(), 1000).unref();
      }),
  };
}

/** The name part of a Host header ("supervise:9100" -> "supervise", "[::1]:80" -> "[::1]"). */
function hostName(header: string): string {
  try {
    return new URL(`http://${header}`).hostname;
  } catch {
    return "";
  }
}

function isRequest(value: unknown): value is { method: string; id: string | number } {
  return (
    typeof value === "object" &&
    value !== null &&
    "method" in value &&
    typeof value.method === "string" &&
    "id" in value &&
    (typeof value.id === "string" || typeof value.id === "number")
  );
}

/** The body as text, or undefined when it is larger than MAX_BODY. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function sendRpcError(res: ServerResponse, status: number, code: number, message: string): void {
  send(res, status, { jsonrpc: "2.0", error: { code, message }, id: null });
}
