import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { egressWidening } from "../../../src/plan/egress-diff.js";
import type { EgressConfig, RouteRule } from "../../../src/shared/egress-config.js";

const route = (host: string, extra: Partial<RouteRule> = {}): RouteRule => ({
  host,
  tlsPassthrough: false,
  allowIpLiteral: false,
  ...extra,
});
const api = route("api.example.com", {
  paths: ["/v1/"],
  methods: ["GET", "POST"],
  auth: { header: "x-api-key", tokenEnv: "API_KEY" },
});
const config = (routes: RouteRule[], extraHosts: Record<string, string> = {}): EgressConfig => ({
  slug: "s-1",
  generation: 1,
  secretEnv: ["API_KEY"],
  routes,
  extraHosts,
});
const withoutAuth = (r: RouteRule): RouteRule => {
  const copy = { ...r };
  delete copy.auth;
  return copy;
};
const noCa: { before: string | undefined; after: string | undefined } = {
  before: undefined,
  after: undefined,
};
const kinds = (current: EgressConfig, next: EgressConfig, ca = noCa) =>
  egressWidening(current, next, ca).map((w) => `${w.kind} ${w.host}`);

describe("what an egress apply widens", () => {
  test("the same routes, reordered, widen nothing", () => {
    const files = route("files.example.com");
    assert.deepEqual(kinds(config([api, files]), config([files, api])), []);
  });

  test("narrowing widens nothing: a route, a path, a method or a mapping dropped", () => {
    const narrower = route("api.example.com", {
      paths: ["/v1/messages"],
      methods: ["POST"],
      auth: api.auth,
    });
    assert.deepEqual(
      kinds(
        config([api, route("b.example.com")], { "b.example.com": "10.0.0.1" }),
        config([narrower]),
      ),
      [],
    );
    // Dropping the credential from a route sends no real token: not wider.
    assert.deepEqual(kinds(config([api]), config([withoutAuth(api)])), []);
  });

  test("a new host is listed, and one that would receive a credential says so", () => {
    const w = egressWidening(
      config([api]),
      config([api, route("evil.example.net", { auth: api.auth })]),
      noCa,
    );
    assert.equal(w.length, 1);
    assert.equal(w[0]?.kind, "auth");
    assert.match(
      w[0]?.text ?? "",
      /^new host evil\.example\.net .*the proxy sends it the real \$API_KEY/,
    );
    assert.deepEqual(kinds(config([api]), config([api, route("npm.example.org")])), [
      "host npm.example.org",
    ]);
  });

  test("a credential moved to another host is a widening even when the host was allowed", () => {
    const before = config([api, route("upload.example.net")]);
    const after = config([withoutAuth(api), route("upload.example.net", { auth: api.auth })]);
    const w = egressWidening(before, after, noCa);
    assert.deepEqual(
      w.map((x) => `${x.kind} ${x.host}`),
      ["auth upload.example.net"],
    );
    assert.match(
      w[0]?.text ?? "",
      /now sends the real credential x-api-key: \$API_KEY \(was no credential\)/,
    );
  });

  test("a credential sent in another header or scheme is listed", () => {
    const bearer = {
      ...api,
      auth: { header: "authorization", scheme: "Bearer", tokenEnv: "API_KEY" },
    };
    assert.deepEqual(kinds(config([api]), config([bearer])), ["auth api.example.com"]);
  });

  test("wider paths, methods, ports, passthrough and IP literals are each listed", () => {
    const open: RouteRule = { ...api };
    delete open.paths;
    delete open.methods;
    assert.deepEqual(kinds(config([api]), config([open])), [
      "paths api.example.com",
      "methods api.example.com",
    ]);
    assert.deepEqual(kinds(config([api]), config([{ ...api, paths: ["/"] }])), [
      "paths api.example.com",
    ]);
    assert.deepEqual(kinds(config([api]), config([{ ...api, methods: ["GET", "DELETE"] }])), [
      "methods api.example.com",
    ]);
    assert.deepEqual(kinds(config([api]), config([{ ...api, port: 8443 }])), [
      "port api.example.com",
    ]);
    const plain = route("pinned.example.com");
    assert.deepEqual(kinds(config([plain]), config([{ ...plain, tlsPassthrough: true }])), [
      "passthrough pinned.example.com",
    ]);
    const ip = route("10.1.2.3");
    assert.deepEqual(kinds(config([ip]), config([{ ...ip, allowIpLiteral: true }])), [
      "ip-literal 10.1.2.3",
    ]);
  });

  test("a route covered by a wider old route does not widen", () => {
    const wild = route("*.example.com");
    assert.deepEqual(kinds(config([wild]), config([wild, route("a.example.com")])), []);
    assert.deepEqual(kinds(config([wild]), config([route("*.b.example.com")])), []);
    assert.deepEqual(kinds(config([route("*.b.example.com")]), config([wild])), [
      "host *.example.com",
    ]);
  });

  test("dropping an exact route hands its host to a wildcard: listed", () => {
    // The proxy takes a host's exact routes over wildcards: a.example.com was GET only.
    const before = config([route("*.example.com"), route("a.example.com", { methods: ["GET"] })]);
    const after = config([route("*.example.com")]);
    const w = egressWidening(before, after, noCa);
    assert.deepEqual(
      w.map((x) => x.kind),
      ["methods"],
    );
    assert.match(
      w[0]?.text ?? "",
      /^a\.example\.com \(through \*\.example\.com\): methods every method \(was GET\)/,
    );
  });

  test("new and changed extra_hosts mappings are listed; removed ones are not", () => {
    const before = config([], { "a.internal": "10.0.0.1", "b.internal": "10.0.0.2" });
    const after = config([], { "a.internal": "10.0.0.9", "c.internal": "10.0.0.3" });
    assert.deepEqual(
      egressWidening(before, after, noCa).map((w) => w.text),
      [
        "extra_hosts a.internal -> 10.0.0.9 (was 10.0.0.1)",
        "extra_hosts c.internal -> 10.0.0.3 (new)",
      ],
    );
  });

  test("a new or changed trust CA is listed; the same one or none is not", () => {
    const c = config([api]);
    assert.deepEqual(kinds(c, c, { before: undefined, after: "PEM A" }), ["trust-ca "]);
    assert.deepEqual(kinds(c, c, { before: "PEM A", after: "PEM B" }), ["trust-ca "]);
    assert.deepEqual(kinds(c, c, { before: "PEM A", after: "PEM A" }), []);
    assert.deepEqual(kinds(c, c, { before: "PEM A", after: undefined }), []);
  });
});
