import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { PACKAGE_ROOT } from "../../../src/package-root.js";
import {
  admittingFlow,
  errnoFor,
  tokenFromHex,
  tokenMatches,
} from "../../../src/sidecars/intercept/flows.js";
import { MAX_PREAMBLE_BYTES, parsePreamble } from "../../../src/sidecars/intercept/preamble.js";

const TOKEN = Buffer.from("a1".repeat(32), "hex");

/** A preamble as smolvm writes it; `family` and `address` bytes given raw. */
function preamble(family: number, port: number, address: number[], token = TOKEN): Buffer {
  const head = Buffer.alloc(44);
  head.write("SMOLICPT", 0, "latin1");
  head[8] = 1;
  token.copy(head, 9);
  head[41] = family;
  head.writeUInt16BE(port, 42);
  return Buffer.concat([head, Buffer.from(address)]);
}

const V4 = preamble(4, 0x2383, [192, 0, 2, 1]);

describe("the interceptor's preamble parser", () => {
  test("reads an IPv4 destination with its port big-endian, and where the flow's bytes begin", () => {
    const r = parsePreamble(Buffer.concat([V4, Buffer.from("GET /")]));
    assert.equal(r.kind, "ok");
    assert.ok(r.kind === "ok");
    assert.equal(r.length, 48);
    assert.equal(r.preamble.family, 4);
    assert.equal(r.preamble.port, 9091);
    assert.equal(r.preamble.address, "192.0.2.1");
    assert.deepEqual(r.preamble.token, TOKEN);
  });

  test("reads an IPv6 destination as eight uncompressed groups", () => {
    const addr = [0x20, 0x01, 0x0d, 0xb8, ...Array<number>(11).fill(0), 1];
    const r = parsePreamble(preamble(6, 443, addr));
    assert.ok(r.kind === "ok");
    assert.equal(r.length, MAX_PREAMBLE_BYTES);
    assert.equal(r.preamble.family, 6);
    assert.equal(r.preamble.port, 443);
    assert.equal(r.preamble.address, "2001:db8:0:0:0:0:0:1");
  });

  test("parses the bytes exactly as the smolvm double's relay writes them", async () => {
    const relay = pathToFileURL(join(PACKAGE_ROOT, "test/fixtures/smolvm-double/lib/relay.mjs"));
    const mod = (await import(relay.href)) as {
      preamble: (token: Buffer, address: string, port: number) => Buffer;
    };
    const v4 = parsePreamble(mod.preamble(TOKEN, "192.0.2.1", 9091));
    assert.ok(v4.kind === "ok");
    assert.deepEqual(v4.preamble, { token: TOKEN, family: 4, port: 9091, address: "192.0.2.1" });
    const v6 = parsePreamble(mod.preamble(TOKEN, "2001:db8::1", 80));
    assert.ok(v6.kind === "ok");
    assert.equal(v6.preamble.address, "2001:db8:0:0:0:0:0:1");
  });

  test("asks for more on every short prefix of a valid preamble", () => {
    for (let n = 0; n < V4.length; n++)
      assert.deepEqual(parsePreamble(V4.subarray(0, n)), { kind: "incomplete" }, `at ${n} bytes`);
    const v6 = preamble(6, 1, Array<number>(16).fill(0));
    assert.deepEqual(parsePreamble(v6.subarray(0, 50)), { kind: "incomplete" });
  });

  test("refuses a wrong magic from its first wrong byte, without waiting for the rest", () => {
    assert.deepEqual(parsePreamble(Buffer.from("GET / HTTP/1.1\r\n")), {
      kind: "invalid",
      problem: "magic",
    });
    assert.deepEqual(parsePreamble(Buffer.from("SMOLX")), { kind: "invalid", problem: "magic" });
    const lower = Buffer.from(V4);
    lower.write("smolicpt", 0, "latin1");
    assert.deepEqual(parsePreamble(lower), { kind: "invalid", problem: "magic" });
  });

  test("refuses any version but 1 and any family but 4 or 6", () => {
    for (const version of [0, 2, 255]) {
      const bad = Buffer.from(V4);
      bad[8] = version;
      assert.deepEqual(parsePreamble(bad), { kind: "invalid", problem: "version" });
      assert.deepEqual(parsePreamble(bad.subarray(0, 9)), { kind: "invalid", problem: "version" });
    }
    for (const family of [0, 5, 41]) {
      const bad = preamble(family, 80, [127, 0, 0, 1]);
      assert.deepEqual(parsePreamble(bad), { kind: "invalid", problem: "family" });
    }
  });
});

describe("the interceptor's decisions", () => {
  const flows = [{ address: "192.0.2.1", port: 9099, to: 9099 }];

  test("takes a token only as exactly 64 hex digits", () => {
    assert.deepEqual(tokenFromHex("A1".repeat(32)), TOKEN);
    for (const bad of [undefined, "", "a1".repeat(31), "a1".repeat(33), "g1".repeat(32)])
      assert.equal(tokenFromHex(bad), undefined);
  });

  test("matches the token byte for byte, whatever length is presented", () => {
    assert.ok(tokenMatches(TOKEN, Buffer.from(TOKEN)));
    const other = Buffer.from(TOKEN);
    other[31] = 0;
    assert.ok(!tokenMatches(TOKEN, other));
    assert.ok(!tokenMatches(TOKEN, TOKEN.subarray(0, 31)));
  });

  test("admits only a listed IPv4 address and port", () => {
    assert.deepEqual(
      admittingFlow(flows, { family: 4, address: "192.0.2.1", port: 9099 }),
      flows[0],
    );
    assert.equal(admittingFlow(flows, { family: 4, address: "192.0.2.1", port: 9098 }), undefined);
    assert.equal(admittingFlow(flows, { family: 4, address: "192.0.2.2", port: 9099 }), undefined);
    assert.equal(admittingFlow(flows, { family: 6, address: "192.0.2.1", port: 9099 }), undefined);
  });

  test("answers a refused dial with ECONNREFUSED and any other failure with EHOSTUNREACH", () => {
    assert.equal(errnoFor("ECONNREFUSED"), 111);
    assert.equal(errnoFor("ETIMEDOUT"), 113);
    assert.equal(errnoFor(undefined), 113);
  });
});
