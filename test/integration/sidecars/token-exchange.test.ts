/**
 * A forwarded host login's refresh through the egress proxy, in process: the agent holds
 * placeholders of an OAuth access and refresh token; the API route injects the real access
 * token; the token endpoint receives the real refresh token in place of its placeholder, and
 * its reply's new tokens become the bundle's while the agent receives their placeholders. After
 * the refresh the API gets the new access token, and the old tokens are still never let out.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { createServer as createHttpsServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { AuditRecord, EgressConfig } from "../../../src/shared/egress-config.js";
import { placeholderFor } from "../../../src/shared/placeholders.js";
import { EgressProxy } from "../../../src/sidecars/egress/proxy.js";
import { makeCa, viaProxy, type Ca } from "../../helpers/egress.js";

const SLUG = "coder-abc123";
const ACCESS = "BB_TEST_ACCESS";
const REFRESH = "BB_TEST_REFRESH";
const token = (prefix: string) => `${prefix}${randomBytes(48).toString("base64url")}`;

describe("token exchange: a forwarded login's refresh through the proxy", () => {
  let dir: string;
  let bottleCa: Ca;
  let upstreamCa: Ca;
  let upstream: Server;
  let upstreamPort = 0;
  let proxy: EgressProxy;
  let port = 0;
  const audit: AuditRecord[] = [];
  const rotations: { values: Record<string, string>; expiresIn: number | undefined }[] = [];
  /** What the fake upstream saw: the bearer on API calls, the refresh token on token calls. */
  const seen = { bearers: [] as string[], refreshes: [] as string[] };
  const first = { access: token("sk-ant-oat01-"), refresh: token("sk-ant-ort01-") };
  const next = { access: token("sk-ant-oat01-"), refresh: token("sk-ant-ort01-") };
  /** The token endpoint's answer: the next pair, and the old refresh token echoed (careless). */
  let reply = () =>
    JSON.stringify({
      access_token: next.access,
      refresh_token: next.refresh,
      expires_in: 3600,
      echo: seen.refreshes.at(-1),
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-exchange-"));
    [bottleCa, upstreamCa] = await Promise.all([makeCa(dir, "bottle"), makeCa(dir, "upstream")]);
    upstream = createHttpsServer({
      key: upstreamCa.authority.leafKey,
      cert: upstreamCa.authority.mint("127.0.0.1"),
      SNICallback: (name, cb) => cb(null, upstreamCa.authority.context(name)),
    });
    upstream.on("request", (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if (req.url === "/v1/oauth/token") {
          seen.refreshes.push((JSON.parse(body) as { refresh_token: string }).refresh_token);
          res.writeHead(200, { "content-type": "application/json" });
          res.end(reply());
          return;
        }
        seen.bearers.push(String(req.headers.authorization ?? ""));
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("ok");
      });
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    upstreamPort = (upstream.address() as { port: number }).port;
    const config: EgressConfig = {
      slug: SLUG,
      generation: 1,
      secretEnv: [ACCESS, REFRESH],
      routes: [
        {
          host: "api.example.test",
          port: upstreamPort,
          tlsPassthrough: false,
          allowIpLiteral: false,
          auth: { header: "authorization", scheme: "Bearer", tokenEnv: ACCESS },
        },
        {
          host: "auth.example.test",
          port: upstreamPort,
          paths: ["/v1/oauth/token"],
          methods: ["POST"],
          tlsPassthrough: false,
          allowIpLiteral: false,
          exchange: {
            refreshEnv: REFRESH,
            rotates: { access_token: ACCESS, refresh_token: REFRESH },
          },
        },
      ],
      extraHosts: { "api.example.test": "127.0.0.1", "auth.example.test": "127.0.0.1" },
    };
    proxy = new EgressProxy({
      config,
      trustCa: upstreamCa.cert,
      ca: bottleCa.authority,
      secrets: { [ACCESS]: first.access, [REFRESH]: first.refresh },
      audit: (r) => audit.push(r),
      log: () => undefined,
      onRotate: (values, expiresIn) => rotations.push({ values: { ...values }, expiresIn }),
    });
    port = await proxy.listen(0, "127.0.0.1");
  });
  after(async () => {
    await proxy.close();
    upstream.close();
  });

  const api = (bearer: string) =>
    viaProxy(port, `api.example.test:${upstreamPort}`, bottleCa.cert, {
      path: "/v1/messages",
      method: "POST",
      headers: { authorization: `Bearer ${bearer}` },
      body: "{}",
    });
  const refresh = (refreshToken: string) =>
    viaProxy(port, `auth.example.test:${upstreamPort}`, bottleCa.cert, {
      path: "/v1/oauth/token",
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "refresh_token", refresh_token: refreshToken }),
    });

  test("before the refresh: the API gets the real access token for the agent's placeholder", async () => {
    const r = await api(placeholderFor(first.access, ACCESS, SLUG));
    assert.equal(r.status, 200);
    assert.equal(seen.bearers.at(-1), `Bearer ${first.access}`);
  });

  test("the refresh: the endpoint gets the real refresh token; the agent gets placeholders of the new pair", async () => {
    const r = await refresh(placeholderFor(first.refresh, REFRESH, SLUG));
    assert.equal(r.status, 200, r.body);
    assert.equal(seen.refreshes.at(-1), first.refresh, "the real refresh token went upstream");
    const body = JSON.parse(r.body) as Record<string, string>;
    assert.equal(body["access_token"], placeholderFor(next.access, ACCESS, SLUG));
    assert.equal(body["refresh_token"], placeholderFor(next.refresh, REFRESH, SLUG));
    assert.equal(
      body["echo"],
      placeholderFor(first.refresh, REFRESH, SLUG),
      "the old token echoed back is redacted",
    );
    for (const real of [first.access, first.refresh, next.access, next.refresh])
      assert.ok(!r.body.includes(real), "no real token reaches the agent");
    const line = audit.find((a) => a.host === "auth.example.test" && a.decision === "allow");
    assert.deepEqual(line?.rotated?.sort(), [ACCESS, REFRESH].sort());
    assert.deepEqual(
      rotations,
      [{ values: { [ACCESS]: next.access, [REFRESH]: next.refresh }, expiresIn: 3600 }],
      "the daemon is told the new tokens, to keep them on disk",
    );
  });

  test("after the refresh: the API gets the new access token", async () => {
    const r = await api(placeholderFor(next.access, ACCESS, SLUG));
    assert.equal(r.status, 200);
    assert.equal(seen.bearers.at(-1), `Bearer ${next.access}`);
  });

  test("a token rotated out is still a secret: sending it raw is refused", async () => {
    const r = await viaProxy(port, `api.example.test:${upstreamPort}`, bottleCa.cert, {
      path: "/v1/messages",
      method: "POST",
      headers: { "x-note": first.access },
      body: "{}",
    });
    assert.equal(r.status, 403, r.body);
    assert.ok(!r.body.includes(first.access));
  });

  test("the refresh placeholder goes nowhere but the token endpoint", async () => {
    const r = await viaProxy(port, `api.example.test:${upstreamPort}`, bottleCa.cert, {
      path: "/v1/messages",
      method: "POST",
      body: JSON.stringify({ steal: placeholderFor(next.refresh, REFRESH, SLUG) }),
    });
    assert.equal(r.status, 403, r.body);
  });

  test("the token endpoint over plain HTTP is refused: the real refresh token only goes over TLS", async () => {
    const before = seen.refreshes.length;
    const r = await new Promise<{ status: number; headers: Record<string, unknown> }>(
      (resolve, reject) => {
        const body = JSON.stringify({
          grant_type: "refresh_token",
          refresh_token: placeholderFor(next.refresh, REFRESH, SLUG),
        });
        const req = httpRequest(
          {
            host: "127.0.0.1",
            port,
            method: "POST",
            path: `http://auth.example.test:${upstreamPort}/v1/oauth/token`,
            headers: {
              host: `auth.example.test:${upstreamPort}`,
              "content-type": "application/json",
              "content-length": Buffer.byteLength(body),
            },
          },
          (res) => {
            res.resume();
            resolve({ status: res.statusCode ?? 0, headers: res.headers });
          },
        );
        req.on("error", reject);
        req.end(body);
      },
    );
    assert.equal(r.status, 403);
    assert.equal(r.headers["x-bot-bottle-refusal"], "credential-needs-tls");
    assert.equal(seen.refreshes.length, before, "nothing reached the endpoint");
  });

  test("a failed refresh changes nothing", async () => {
    reply = () => "not json";
    const r = await refresh(placeholderFor(next.refresh, REFRESH, SLUG));
    assert.equal(r.status, 200);
    assert.equal(seen.refreshes.at(-1), next.refresh);
    await api(placeholderFor(next.access, ACCESS, SLUG));
    assert.equal(seen.bearers.at(-1), `Bearer ${next.access}`);
  });
});
