/**
 * The few Gitea API calls a per-bottle deploy key needs — add one, list them, delete those with
 * a bottle's title — used by the git gate (adds at start, deletes at stop) and by the host
 * (`stop` and `cleanup` delete what a killed bundle left). Plain node:http(s), so the bundle needs
 * no library; a host's `extra_hosts` address and the bottle's extra CA are honoured. Errors say
 * which call failed and what the server answered, never the token.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";

export interface GiteaTarget {
  /** Base URL of the server, e.g. https://gitea.example.com. */
  apiUrl: string;
  /** "owner/name". */
  repo: string;
  token: string;
  /** Host name -> address to dial instead of resolving it. */
  extraHosts?: Readonly<Record<string, string>>;
  /** Extra CA certificates (PEM) to trust for an https server. */
  ca?: string;
  timeoutMs?: number;
}

export interface DeployKey {
  id: number;
  title: string;
  key: string;
}

export class GiteaError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "GiteaError";
  }
}

function lookupFor(
  hosts: Readonly<Record<string, string>> | undefined,
): LookupFunction | undefined {
  if (!hosts || Object.keys(hosts).length === 0) return undefined;
  return (hostname, options, callback) => {
    const mapped = hosts[hostname.toLowerCase()];
    if (mapped === undefined) {
      void import("node:dns").then(({ lookup }) => lookup(hostname, options, callback));
      return;
    }
    const family = mapped.includes(":") ? 6 : 4;
    if ((options as { all?: boolean }).all)
      (callback as (e: null, a: { address: string; family: number }[]) => void)(null, [
        { address: mapped, family },
      ]);
    else callback(null, mapped, family);
  };
}

async function call(
  target: GiteaTarget,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const base = new URL(target.apiUrl);
  const url = new URL(`${base.pathname.replace(/\/$/, "")}/api/v1${path}`, base);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const request = url.protocol === "https:" ? httpsRequest : httpRequest;
  const what = `${method} ${url.origin}${url.pathname}`;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        headers: {
          authorization: `token ${target.token}`,
          accept: "application/json",
          ...(payload ? { "content-type": "application/json" } : {}),
        },
        lookup: lookupFor(target.extraHosts),
        ...(target.ca ? { ca: target.ca } : {}),
        timeout: target.timeoutMs ?? 15_000,
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown = undefined;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on("timeout", () => req.destroy(new GiteaError(`${what}: no answer in time`)));
    req.on("error", (err) =>
      reject(err instanceof GiteaError ? err : new GiteaError(`${what}: ${err.message}`)),
    );
    req.end(payload);
  });
}

function failure(what: string, status: number, json: unknown): GiteaError {
  const said =
    typeof json === "object" && json !== null && "message" in json
      ? String(json.message).slice(0, 200)
      : "";
  const meaning =
    status === 401 || status === 403
      ? "the token was refused"
      : status === 404
        ? "no such repository (or the token cannot see it)"
        : `HTTP ${status}`;
  return new GiteaError(`${what}: ${meaning}${said ? ` (${said})` : ""}`, status);
}

const keysPath = (repo: string) =>
  `/repos/${repo.split("/").map(encodeURIComponent).join("/")}/keys`;

export async function listDeployKeys(target: GiteaTarget): Promise<DeployKey[]> {
  const out: DeployKey[] = [];
  for (let page = 1; page < 100; page++) {
    const { status, json } = await call(
      target,
      "GET",
      `${keysPath(target.repo)}?page=${page}&limit=50`,
    );
    if (status !== 200 || !Array.isArray(json))
      throw failure(`listing the deploy keys of ${target.repo}`, status, json);
    out.push(...(json as DeployKey[]));
    if (json.length < 50) break;
  }
  return out;
}

/** Registers `key` (an OpenSSH public key line) with push access; returns its id. */
export async function addDeployKey(
  target: GiteaTarget,
  title: string,
  key: string,
): Promise<number> {
  const { status, json } = await call(target, "POST", keysPath(target.repo), {
    title,
    key,
    read_only: false,
  });
  const id = (json as { id?: unknown } | undefined)?.id;
  if (status !== 201 || typeof id !== "number")
    throw failure(`registering a deploy key on ${target.repo}`, status, json);
  return id;
}

/** Deletes every deploy key titled `title`; returns how many went. */
export async function deleteDeployKeys(target: GiteaTarget, title: string): Promise<number> {
  let deleted = 0;
  for (const key of await listDeployKeys(target)) {
    if (key.title !== title) continue;
    const { status, json } = await call(target, "DELETE", `${keysPath(target.repo)}/${key.id}`);
    if (status !== 204 && status !== 404)
      throw failure(`deleting the deploy key ${key.id} of ${target.repo}`, status, json);
    if (status === 204) deleted++;
  }
  return deleted;
}

/** The title a bottle's deploy keys carry: how stop and cleanup find them again. */
export function deployKeyTitle(slug: string): string {
  return `bot-bottle ${slug}`;
}
