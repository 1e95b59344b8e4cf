import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { placeholderFor } from "../../../src/shared/placeholders.js";
import { encodings, Redactor, SecretScanner } from "../../../src/sidecars/dlp.js";
import { readSni } from "../../../src/sidecars/egress/sni.js";

describe("placeholders", () => {
  test("keep the token's prefix, length and character classes, and differ from it", () => {
    const token = "sk-ant-api03-AbCdEf0123456789_xyzXYZ-0123456789abcdefABCDEF";
    const p = placeholderFor(token, "ANTHROPIC_API_KEY", "probe-abc123");
    assert.equal(p.length, token.length);
    assert.ok(p.startsWith("sk-ant-api03-"));
    assert.notEqual(p, token);
    for (let i = 0; i < token.length; i++) {
      const cls = (c: string) =>
        /[0-9]/.test(c) ? "d" : /[a-z]/.test(c) ? "l" : /[A-Z]/.test(c) ? "u" : c;
      assert.equal(cls(p[i]!), cls(token[i]!), `position ${i}`);
    }
  });

  test("depend on the bottle and the variable: one bottle's placeholder is no other's", () => {
    const token = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    assert.equal(placeholderFor(token, "GH", "a-1"), placeholderFor(token, "GH", "a-1"));
    assert.notEqual(placeholderFor(token, "GH", "a-1"), placeholderFor(token, "GH", "a-2"));
    assert.notEqual(placeholderFor(token, "GH", "a-1"), placeholderFor(token, "GH2", "a-1"));
  });
});

describe("secret scanning", () => {
  const secret = "s3cr3t-value-0123456789-abcdef";
  const scanner = new SecretScanner(
    [{ name: "TOKEN", value: secret }],
    [{ name: "TOKEN", value: "pl4ceh0lder-0123456789-zzzzzz" }],
  );

  test("finds a held secret raw and encoded, at every base64 alignment", () => {
    for (const form of encodings(secret)) assert.ok(scanner.scan(`x ${form} y`, new Set()), form);
    for (const pre of ["", "a", "ab"]) {
      const b64 = Buffer.from(pre + secret + "tail").toString("base64");
      assert.equal(scanner.scan(b64, new Set())?.kind, "held-secret", `after ${pre.length} bytes`);
    }
    assert.equal(scanner.scan("nothing to see here", new Set()), undefined);
  });

  test("finds credential shapes; a placeholder is fine only where its route allows it", () => {
    assert.equal(scanner.scan("AKIAIOSFODNN7EXAMPLE", new Set())?.name, "aws-access-key-id");
    assert.equal(scanner.scan("-----BEGIN RSA PRIVATE KEY-----", new Set())?.name, "private-key");
    assert.equal(scanner.scan("pl4ceh0lder-0123456789-zzzzzz", new Set())?.kind, "placeholder");
    assert.equal(scanner.scan("pl4ceh0lder-0123456789-zzzzzz", new Set(["TOKEN"])), undefined);
  });

  test("a stream scan catches a secret split across chunks before any of it is forwarded", () => {
    const scan = scanner.stream(new Set());
    const body = Buffer.from("a".repeat(5000) + secret + "b".repeat(100));
    const cut = 5000 + 10;
    const first = scan.push(body.subarray(0, cut));
    assert.equal(first.finding, undefined);
    assert.ok(!first.forward.toString().includes(secret.slice(0, 10)), "the start is held back");
    assert.ok(scan.push(body.subarray(cut)).finding);
  });

  test("the redactor swaps a token for its placeholder across chunk boundaries, same length", () => {
    const real = Buffer.from("REAL-TOKEN-1234567890");
    const placeholder = Buffer.from("FAKE-TOKEN-0987654321");
    const r = new Redactor([{ real, placeholder }]);
    const text = `{"echo":"${real.toString()}"}`;
    const out = Buffer.concat([
      r.push(Buffer.from(text.slice(0, 15))),
      r.push(Buffer.from(text.slice(15))),
      r.end(),
    ]);
    assert.equal(out.toString(), text.replace(real.toString(), placeholder.toString()));
  });
});

describe("the redactor's hold-back", () => {
  test("passes a chunk through untouched unless it ends with the start of a token", () => {
    const real = Buffer.from("REAL-TOKEN-1234567890");
    const r = new Redactor([{ real, placeholder: Buffer.from("FAKE-TOKEN-0987654321") }]);
    const plain = Buffer.from("no token here at all");
    assert.equal(r.push(plain), plain, "the same buffer, not a copy");
    assert.equal(r.push(Buffer.from("abc REAL-TO")).toString(), "abc ");
    const rest = Buffer.concat([r.push(Buffer.from("day is fine")), r.end()]);
    assert.equal(
      rest.toString(),
      "REAL-TOday is fine",
      "a prefix that never completes is kept whole",
    );
  });
});

describe("the TLS server name of a ClientHello", () => {
  test("is read without decrypting, and incomplete or non-TLS data says so", async () => {
    const { connect } = await import("node:tls");
    const { createServer } = await import("node:net");
    const hello = await new Promise<Buffer>((resolve) => {
      const server = createServer((s) =>
        s.once("data", (d: Buffer) => (resolve(d), s.destroy(), server.close())),
      );
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as { port: number }).port;
        connect({ port, host: "127.0.0.1", servername: "api.example.test" }).on(
          "error",
          () => undefined,
        );
      });
    });
    assert.deepEqual(readSni(hello), { name: "api.example.test" });
    assert.equal(readSni(hello.subarray(0, 20)), "incomplete");
    assert.equal(readSni(Buffer.from("GET / HTTP/1.1\r\n\r\n")), "not-tls");
  });
});
