import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { RouteRule } from "../../../src/shared/egress-config.js";
import { canonicalIp, isInternalAddress } from "../../../src/shared/hosts.js";
import {
  auditPath,
  decideConnect,
  decideRequest,
  decodeSafePath,
  literalAllowed,
  parseAuthority,
  inForce,
  pathMatches,
  pathProblem,
  routesFor,
  targetProblem,
  type Decision,
} from "../../../src/sidecars/egress/policy.js";

const route = (host: string, extra: Partial<RouteRule> = {}): RouteRule => ({
  host,
  tlsPassthrough: false,
  allowIpLiteral: false,
  ...extra,
});

const tagOf = (d: Decision) => (d.allow ? "allowed" : d.tag);

describe("egress policy: hosts and ports", () => {
  test("one spelling of a host: case, trailing dot, IDNA, IP forms", () => {
    assert.deepEqual(parseAuthority("API.Example.COM.:443", 443), {
      host: "api.example.com",
      port: 443,
      ip: false,
    });
    assert.equal(parseAuthority("bücher.de:443", 443)?.host, "xn--bcher-kva.de");
    assert.deepEqual(parseAuthority("0x7f.1:80", 443), { host: "127.0.0.1", port: 80, ip: true });
    assert.equal(parseAuthority("[::1]:443", 443)?.host, "::1");
    assert.equal(parseAuthority("user@evil.com:443", 443), undefined);
    assert.equal(parseAuthority("a/b:443", 443), undefined);
  });

  test("every spelling of an IPv4 or IPv6 address comes out canonical, or not at all", () => {
    for (const spelling of [
      "127.0.0.1",
      "2130706433",
      "0177.0.0.1",
      "0x7f.0x0.0x0.0x1",
      "0x7f000001",
      "017700000001",
      "127.1",
      "127.0.0.1.",
      "１２７.０.０.１",
      "127。0。0。1",
    ])
      assert.deepEqual(parseAuthority(`${spelling}:443`, 443), {
        host: "127.0.0.1",
        port: 443,
        ip: true,
      });
    assert.equal(parseAuthority("0:443", 443)?.host, "0.0.0.0");
    assert.equal(parseAuthority("4294967295:443", 443)?.host, "255.255.255.255");
    assert.equal(parseAuthority("[::ffff:127.0.0.1]:443", 443)?.host, "::ffff:7f00:1");
    assert.equal(parseAuthority("[0:0:0:0:0:FFFF:7F00:1]:443", 443)?.host, "::ffff:7f00:1");
    assert.equal(parseAuthority("[::127.0.0.1]:443", 443)?.host, "::7f00:1");
    for (const bad of [
      "%31%32%37.0.0.1:443",
      "[fe80::1%25eth0]:443",
      "1.2.3.4.5:443",
      "4294967296:443",
      "a.test\t:443",
      "a.test\x00:443",
    ])
      assert.equal(parseAuthority(bad, 443), undefined, JSON.stringify(bad));
  });

  test("exact routes win over wildcards; a wildcard never matches its own apex", () => {
    const routes = [route("*.example.com"), route("api.example.com", { paths: ["/v1/"] })];
    const exact = decideRequest(routes, parseAuthority("api.example.com", 443)!, "GET", "/x", true);
    assert.equal(exact.allow, false, "the exact route's paths apply, not the wildcard's");
    const sub = decideRequest(routes, parseAuthority("cdn.example.com", 443)!, "GET", "/x", true);
    assert.equal(sub.allow, true);
    const apex = decideConnect(routes, parseAuthority("example.com:443", 443)!);
    assert.equal(tagOf(apex), "not-in-routes");
  });

  test("ports: 443 for tunnels and 80 for plain HTTP, unless the route names one", () => {
    const routes = [route("a.test"), route("b.test", { port: 8443 })];
    assert.equal(decideConnect(routes, parseAuthority("a.test:443", 443)!).allow, true);
    assert.equal(
      tagOf(decideConnect(routes, parseAuthority("a.test:22", 443)!)),
      "port-not-allowed",
    );
    assert.equal(decideConnect(routes, parseAuthority("b.test:8443", 443)!).allow, true);
    assert.equal(decideConnect(routes, parseAuthority("b.test:443", 443)!).allow, false);
    const plain = decideRequest(routes, parseAuthority("a.test", 80)!, "GET", "/", false);
    assert.equal(plain.allow, true);
  });

  test("a passthrough route admits tunnels only", () => {
    const routes = [route("pin.test", { tlsPassthrough: true })];
    const t = parseAuthority("pin.test:443", 443)!;
    assert.equal(decideConnect(routes, t).allow, true);
    assert.equal(tagOf(decideRequest(routes, t, "GET", "/", true)), "passthrough-only");
  });

  test("the audit path keeps query names, never values", () => {
    assert.equal(auditPath("/v1/x?key=secret&page=2"), "/v1/x?key=&page=");
    assert.equal(auditPath("/plain"), "/plain");
  });
});

describe("egress policy: IP literals", () => {
  test("need a route that allows that literal", () => {
    const refused = decideConnect([route("a.test")], parseAuthority("10.0.0.1:443", 443)!);
    assert.equal(tagOf(refused), "ip-literal");
    const allowed = [route("93.184.216.34", { allowIpLiteral: true })];
    assert.equal(decideConnect(allowed, parseAuthority("93.184.216.34:443", 443)!).allow, true);
  });

  test("a private literal is refused even with allow_ip_literal; an extra_hosts mapping allows it", () => {
    const routes = [route("10.0.0.7", { allowIpLiteral: true })];
    const t = parseAuthority("10.0.0.7:443", 443)!;
    const refused = decideConnect(routes, t);
    assert.equal(tagOf(refused), "private-address");
    assert.match(refused.allow ? "" : refused.reason, /extra_hosts/);
    assert.equal(tagOf(decideRequest(routes, t, "GET", "/", true)), "private-address");
    const extra = { "build.internal": "10.0.0.7" };
    assert.equal(decideConnect(routes, t, extra).allow, true);
    assert.equal(decideRequest(routes, t, "GET", "/", true, extra).allow, true);
    // A mapping of some other address does not open this one.
    assert.equal(tagOf(decideConnect(routes, t, { x: "10.0.0.8" })), "private-address");
  });

  for (const [routeHost, authority] of [
    ["127.0.0.1", "127.0.0.1:443"],
    ["127.0.0.1", "0x7f.1:443"],
    ["127.0.0.1", "2130706433:443"],
    ["127.0.0.2", "127.0.0.2:443"],
    ["169.254.169.254", "169.254.169.254:443"],
    ["169.254.169.254", "0xa9.0xfe.0xa9.0xfe:443"],
    ["0.0.0.0", "0:443"],
    ["0.0.0.0", "0.0.0.0:443"],
    ["255.255.255.255", "4294967295:443"],
    ["::1", "[::1]:443"],
    ["::", "[::]:443"],
    ["::ffff:127.0.0.1", "[::ffff:127.0.0.1]:443"],
    ["::ffff:7f00:1", "[0:0:0:0:0:ffff:7f00:1]:443"],
    ["::ffff:a9fe:a9fe", "[::ffff:169.254.169.254]:443"],
    ["64:ff9b::a00:1", "[64:ff9b::10.0.0.1]:443"],
    ["2002:7f00:1::1", "[2002:7f00:1::1]:443"],
    ["fd00::1", "[fd00::1]:443"],
    ["fe80::1", "[fe80::1]:443"],
  ] as const)
    test(`an allow_ip_literal route to ${routeHost} does not dial ${authority}`, () => {
      const t = parseAuthority(authority, 443);
      assert.ok(t?.ip, authority);
      const d = decideConnect([route(routeHost, { allowIpLiteral: true })], t);
      assert.equal(tagOf(d), "private-address");
      assert.equal(
        tagOf(decideConnect([route(routeHost, { allowIpLiteral: true })], t, { h: routeHost })),
        "allowed",
      );
    });

  test("literalAllowed: the same check for the proxy's dialler", () => {
    const t = (host: string) => parseAuthority(host, 443)!;
    assert.equal(literalAllowed(t("8.8.8.8"), {}), undefined);
    assert.equal(literalAllowed(t("[2606:4700::1111]"), {}), undefined);
    assert.equal(literalAllowed(t("a.test"), {}), undefined, "names are checked once resolved");
    assert.equal(literalAllowed(t("127.0.0.1"), {})?.tag, "private-address");
    assert.equal(literalAllowed(t("[::ffff:7f00:1]"), { h: "::FFFF:127.0.0.1" }), undefined);
  });
});

describe("isInternalAddress", () => {
  test("internal: this network, loopback, private, CGNAT, link-local, multicast, reserved", () => {
    for (const a of [
      "0.0.0.0",
      "0.1.2.3",
      "127.0.0.1",
      "127.255.255.254",
      "10.1.2.3",
      "172.16.0.1",
      "172.20.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "100.64.0.1",
      "100.127.255.255",
      "169.254.169.254",
      "169.254.0.1",
      "192.0.0.1",
      "192.0.2.1",
      "198.18.0.1",
      "224.0.0.1",
      "239.255.255.250",
      "240.0.0.1",
      "255.255.255.255",
    ])
      assert.equal(isInternalAddress(a), true, a);
  });

  test("internal IPv6, and every IPv6 form that carries an internal IPv4 address", () => {
    for (const a of [
      "::",
      "::1",
      "0:0:0:0:0:0:0:1",
      "fc00::1",
      "fd00::1",
      "fe80::1",
      "FE80::abcd",
      "fec0::1",
      "ff02::1",
      "2001:db8::1",
      "100::1",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "::FFFF:7F00:1",
      "0:0:0:0:0:ffff:7f00:1",
      "::ffff:a9fe:a9fe",
      "::ffff:10.0.0.1",
      "::127.0.0.1",
      "::7f00:1",
      "::a9fe:a9fe",
      "::ffff:0:127.0.0.1",
      "64:ff9b::127.0.0.1",
      "64:ff9b::a9fe:a9fe",
      "64:ff9b::c0a8:101",
      "64:ff9b:1::1",
      "2002:7f00:1::",
      "2002:a9fe:a9fe::1",
      "2002:c0a8:101::1",
      "2001::1",
      "fe80::1%eth0",
      "not-an-address",
      "0x7f.1",
    ])
      assert.equal(isInternalAddress(a), true, a);
  });

  test("public addresses, also inside the IPv6 forms that carry IPv4", () => {
    for (const a of [
      "93.184.216.34",
      "1.1.1.1",
      "8.8.8.8",
      "100.63.255.255",
      "100.128.0.1",
      "172.15.255.255",
      "172.32.0.1",
      "192.169.0.1",
      "223.255.255.255",
      "2606:2800:220:1::1",
      "2a00:1450:4001::1",
      "2001:4860:4860::8888",
      "::ffff:8.8.8.8",
      "::ffff:808:808",
      "64:ff9b::8.8.8.8",
      "2002:808:808::1",
    ])
      assert.equal(isInternalAddress(a), false, a);
  });

  test("canonicalIp writes one spelling", () => {
    assert.equal(canonicalIp("::FFFF:127.0.0.1"), "::ffff:7f00:1");
    assert.equal(canonicalIp("[0:0::1]"), "::1");
    assert.equal(canonicalIp("10.0.0.7"), "10.0.0.7");
    assert.equal(canonicalIp("a.test"), undefined);
  });
});

describe("egress policy: paths are decided on the bytes sent", () => {
  const host = parseAuthority("a.test", 443)!;
  const on = (paths: string[], target: string, method = "GET") =>
    decideRequest([route("a.test", { paths })], host, method, target, true);

  test("a prefix ending in / covers what is under it", () => {
    assert.equal(tagOf(on(["/v1/"], "/v1/messages")), "allowed");
    assert.equal(tagOf(on(["/v1/"], "/v1/")), "allowed");
    assert.equal(tagOf(on(["/v1/"], "/v1/messages?beta=true&x=%2F..")), "allowed");
    assert.equal(tagOf(on(["/v1/"], "/v1")), "path-not-allowed");
    assert.equal(tagOf(on(["/v1/"], "/v10/messages")), "path-not-allowed");
    assert.equal(tagOf(on(["/v1/"], "/V1/messages")), "path-not-allowed");
  });

  test("a prefix without a trailing / matches at segment boundaries only", () => {
    for (const ok of ["/v1", "/v1/", "/v1/x", "/v1?x=1"])
      assert.equal(tagOf(on(["/v1"], ok)), "allowed", ok);
    for (const no of ["/v10", "/v1x", "/v1.json", "/v1-admin", "/v1~", "/v1@x", "/v1:x"])
      assert.equal(tagOf(on(["/v1"], no)), "path-not-allowed", no);
    assert.equal(pathMatches("/v1", "/v1"), true);
    assert.equal(pathMatches("/v1", "/v10"), false);
    assert.equal(pathMatches("/", "/anything"), true);
  });

  // Each attack beside the plain request it imitates, on a "/v1/" route.
  const attacks: [attack: string, twin: string][] = [
    ["/v1/..;/admin", "/v1/messages"],
    ["/v1/../admin", "/v1/admin"],
    ["/v1/./messages", "/v1/messages"],
    ["/v1/.", "/v1/x"],
    ["/v1/..", "/v1/x"],
    ["/v1/...", "/v1/x"],
    ["/v1/..foo/admin", "/v1/foo/admin"],
    ["/v1/%2e%2e%2fadmin", "/v1/admin"],
    ["/v1/%2E%2E/admin", "/v1/admin"],
    ["/v1/%2e%2e/admin", "/v1/admin"],
    ["/v1/.%2e/admin", "/v1/admin"],
    ["/v1/%2e./admin", "/v1/admin"],
    ["/v1/%2e/admin", "/v1/admin"],
    ["/v1/%252e%252e/admin", "/v1/admin"],
    ["/v1/%252fadmin", "/v1/admin"],
    ["/v1/%25", "/v1/x"],
    ["/v1/..%5cadmin", "/v1/admin"],
    ["/v1/..%5Cadmin", "/v1/admin"],
    ["/v1/x%2fy", "/v1/x/y"],
    ["/v1/x%2Fy", "/v1/x/y"],
    ["/v1\\..\\admin", "/v1/admin"],
    ["/v1/..\\admin", "/v1/admin"],
    ["/v1/x?a=\\", "/v1/x?a=1"],
    ["/v1;jsessionid=abc/messages", "/v1/messages"],
    ["/v1/messages;jsessionid=abc", "/v1/messages"],
    ["/v1/x%3bjsessionid=1", "/v1/x"],
    ["/v1/%76%31", "/v1/v1"],
    ["/%76%31/messages", "/v1/messages"],
    ["/v1/%41dmin", "/v1/Admin"],
    ["/v1/%7e", "/v1/~"],
    ["/v1/%u002e%u002e/admin", "/v1/admin"],
    ["/v1/%u2215admin", "/v1/admin"],
    ["/v1/%c0%ae%c0%ae/admin", "/v1/admin"],
    ["/v1/%c0%af", "/v1/x"],
    ["/v1/%e0%80%ae%e0%80%ae/", "/v1/x/"],
    ["/v1/%c1%9c", "/v1/x"],
    ["/v1/%ed%a0%80", "/v1/x"],
    ["/v1/%ef%bc%8e%ef%bc%8e/admin", "/v1/%c3%a9/admin"],
    ["/v1/%ef%bc%8f", "/v1/%e6%97%a5"],
    ["/v1/%e2%88%95admin", "/v1/admin"],
    ["/v1/%e2%80%a4%e2%80%a4/admin", "/v1/admin"],
    ["/v1/%e2%80%8b../admin", "/v1/admin"],
    ["/v1/%c2%a0", "/v1/%20"],
    ["/v1/%00", "/v1/x"],
    ["/v1/x%00.json", "/v1/x.json"],
    ["/v1/%0d%0aX-Evil:%201", "/v1/x"],
    ["/v1/%09", "/v1/x"],
    ["/v1/%7f", "/v1/x"],
    ["/v1/..%00/admin", "/v1/admin"],
    ["/v1/..%20/admin", "/v1/%20/admin"],
    ["/v1/..%23/admin", "/v1/%23/admin"],
    ["/v1/..%3f/admin", "/v1/%3f/admin"],
    ["/v1//admin", "/v1/admin"],
    ["/v1/x/../../admin", "/v1/x/admin"],
    ["/v1/%", "/v1/x"],
    ["/v1/%4", "/v1/x"],
    ["/v1/%zz", "/v1/x"],
    ["/v1/a|b", "/v1/a%7cb"],
    ["/v1/<x>", "/v1/%3cx%3e"],
    ["/v1/{x}", "/v1/%7bx%7d"],
    ["/v1/`x`", "/v1/x"],
    ['/v1/"x"', "/v1/x"],
    ["/v1/^x", "/v1/x"],
    ["/v1/[x]", "/v1/x"],
  ];
  for (const [attack, twin] of attacks)
    test(`${JSON.stringify(attack)} is refused where ${JSON.stringify(twin)} is allowed`, () => {
      const refused = on(["/v1/"], attack);
      assert.equal(tagOf(refused), "bad-path");
      assert.match(
        refused.allow ? "" : refused.reason,
        /^bot-bottle: (path refused on "a\.test"|the request target)[ ,]/,
      );
      assert.doesNotMatch(refused.allow ? "" : refused.reason, /[\r\n]/);
      assert.equal(tagOf(on(["/v1/"], twin)), "allowed");
      assert.equal(decodeSafePath(attack), undefined);
    });

  // Not a valid origin-form target: refused on every route, with or without paths.
  const invalid: [attack: string, twin: string][] = [
    ["v1/messages", "/v1/messages"],
    ["", "/"],
    ["*", "/"],
    ["http://a.test/v1/x", "/v1/x"],
    ["https://evil.test/v1/x", "/v1/x"],
    ["/v1/x y", "/v1/x%20y"],
    ["/v1/x\ty", "/v1/x%09y"],
    ["/v1/x\x00", "/v1/x"],
    ["/v1/x\r\nHost: evil", "/v1/x"],
    ["/v1/x#frag", "/v1/x"],
    ["/v1/#/../admin", "/v1/x"],
    ["/v1/é", "/v1/%c3%a9"],
    ["/v1/\u2215", "/v1/x"],
    ["/v1/x\x7f", "/v1/x"],
  ];
  for (const [attack, twin] of invalid)
    test(`${JSON.stringify(attack)} is not a request target on any route`, () => {
      assert.ok(targetProblem(attack), attack);
      assert.equal(tagOf(on(["/v1/"], attack)), "bad-path");
      const open = decideRequest([route("a.test")], host, "GET", attack, true);
      assert.equal(tagOf(open), "bad-path");
      assert.equal(tagOf(decideRequest([route("a.test")], host, "GET", twin, true)), "allowed");
    });

  test("routes without paths stay permissive about spelling beyond origin form", () => {
    const open = [route("a.test")];
    for (const p of [
      "/v1/..;/admin",
      "/%2e%2e/x",
      "/a%2fb",
      "/a\\b",
      "/a;b=c",
      "//x",
      "/%u002e",
      "/%c0%ae",
      "/[x]",
    ])
      assert.equal(tagOf(decideRequest(open, host, "GET", p, true)), "allowed", p);
  });

  test("a route without paths beside one with paths on the same host takes any spelling", () => {
    const routes = [
      route("a.test", { paths: ["/v1/"], methods: ["POST"] }),
      route("a.test", { methods: ["GET"] }),
    ];
    const get = decideRequest(routes, host, "GET", "/v1/%2e%2e/x", true);
    assert.equal(get.allow ? get.route.methods?.[0] : "", "GET");
    assert.equal(
      tagOf(decideRequest(routes, host, "POST", "/v1/%2e%2e/x", true)),
      "method-not-allowed",
    );
    assert.equal(tagOf(decideRequest(routes, host, "POST", "/v1/x", true)), "allowed");
  });

  test("plain escapes of other bytes, and well-formed UTF-8, are fine on paths routes", () => {
    for (const p of [
      "/v1/a%20b",
      "/v1/a%2Bb",
      "/v1/a%3Ab",
      "/v1/a%40b",
      "/v1/caf%C3%A9",
      "/v1/%e6%97%a5%e6%9c%ac",
      "/v1/%f0%9f%98%80",
      "/v1/.well-known/x",
      "/v1/.git",
      "/v1/a.b.c",
      "/v1/a..b",
      "/v1/x.",
      "/v1/!$&'()*+,=:@-._~",
      "/v1/x?q=a;b&c=%2e%2e",
    ])
      assert.equal(pathProblem(p), undefined, p);
  });

  test("methods are compared exactly", () => {
    const routes = [route("a.test", { paths: ["/v1/"], methods: ["GET"] })];
    assert.equal(tagOf(decideRequest(routes, host, "GET", "/v1/x?q=1", true)), "allowed");
    assert.equal(tagOf(decideRequest(routes, host, "POST", "/v1/x", true)), "method-not-allowed");
    assert.equal(tagOf(decideRequest(routes, host, "get", "/v1/x", true)), "method-not-allowed");
  });

  test("decodeSafePath gives the raw path up to its query, never a decoded one", () => {
    assert.equal(decodeSafePath("/v1/a%20b?x=1"), "/v1/a%20b");
    assert.equal(decodeSafePath("no-slash"), undefined);
    assert.equal(decodeSafePath("/%76%31/x"), undefined);
  });
});

describe("granted routes' leases", () => {
  const route = (expires?: string): RouteRule => ({
    host: "api.example.com",
    tlsPassthrough: false,
    allowIpLiteral: false,
    ...(expires ? { expires, grant: "r-0123456789" } : {}),
  });

  test("a route without a lease is always in force; a leased one until its end, not after", () => {
    const now = Date.parse("2026-12-07T03:00:00.000Z");
    assert.ok(inForce(route(), now));
    assert.ok(inForce(route("2026-12-07T03:00:00.001Z"), now));
    assert.ok(!inForce(route("2026-12-07T03:00:00.000Z"), now));
    assert.ok(!inForce(route("2026-12-07T02:59:59.000Z"), now));
  });

  test("an ended lease matches nothing, so the host is refused as not in the routes", () => {
    const ended = route(new Date(Date.now() - 1000).toISOString());
    assert.deepEqual(routesFor([ended], "api.example.com"), []);
    assert.deepEqual(routesFor([ended, route()], "api.example.com"), [route()]);
  });
});
