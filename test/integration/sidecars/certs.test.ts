/**
 * Leaves minted by the egress CA, read back the ways their users read them: node:crypto's
 * X509Certificate, `openssl x509 -text`, `openssl verify -x509_strict -purpose sslserver` with
 * the name checked, and a real TLS handshake trusting the bottle CA alone.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { isIP, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  checkServerIdentity,
  connect as tlsConnect,
  createServer as createTlsServer,
} from "node:tls";
import { run } from "../../../src/exec/run.js";
import { CertificateAuthority } from "../../../src/sidecars/egress/certs.js";
import { makeCa, type Ca } from "../../helpers/egress.js";

const label63 = "a".repeat(63);
const long204 = ["b", "c", "d"].map((c) => c.repeat(63)).join(".") + ".example.test";
const long253 = [...["e", "f", "g"].map((c) => c.repeat(63)), "h".repeat(56), "test"].join(".");

interface Case {
  /** What is asked of mint(). */
  host: string;
  /** The name a client checks: a DNS name (A-labels) or an IP address. */
  name: string;
  /** The SAN entry X509Certificate shows. */
  san: string;
  /** The iPAddress SAN's length in octets. */
  ipOctets?: number;
}

const CASES: Case[] = [
  { host: "api.example.test", name: "api.example.test", san: "DNS:api.example.test" },
  {
    host: `${label63}.example.test`,
    name: `${label63}.example.test`,
    san: `DNS:${label63}.example.test`,
  },
  { host: long204, name: long204, san: `DNS:${long204}` },
  { host: long253, name: long253, san: `DNS:${long253}` },
  { host: "192.0.2.7", name: "192.0.2.7", san: "IP Address:192.0.2.7", ipOctets: 4 },
  {
    host: "2001:db8::7",
    name: "2001:db8::7",
    san: "IP Address:2001:DB8:0:0:0:0:0:7",
    ipOctets: 16,
  },
  {
    host: "::ffff:192.0.2.7",
    name: "::ffff:192.0.2.7",
    san: "IP Address:0:0:0:0:0:FFFF:C000:207",
    ipOctets: 16,
  },
  {
    host: "xn--bcher-kva.example",
    name: "xn--bcher-kva.example",
    san: "DNS:xn--bcher-kva.example",
  },
  { host: "bücher.example", name: "xn--bcher-kva.example", san: "DNS:xn--bcher-kva.example" },
  { host: "API.Example.TEST.", name: "api.example.test", san: "DNS:api.example.test" },
];

describe("leaf certificates minted by the egress CA", () => {
  let dir: string;
  let ca: Ca;
  let caCert: X509Certificate;
  let caFile: string;
  let caText: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-certs-"));
    ca = await makeCa(dir, "bottle");
    caCert = new X509Certificate(ca.cert);
    caFile = join(dir, "bottle", "ca.crt");
    caText = (await run("openssl", ["x509", "-in", caFile, "-noout", "-text"])).stdout;
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const c of CASES) {
    describe(`for ${c.host.length > 40 ? `a ${c.host.length}-char name` : c.host}`, () => {
      let pem: string;
      let leaf: X509Certificate;
      let leafFile: string;
      let text: string;

      before(async () => {
        pem = ca.authority.mint(c.host);
        leaf = new X509Certificate(pem);
        leafFile = join(dir, `leaf-${CASES.indexOf(c)}.pem`);
        await writeFile(leafFile, pem);
        text = (await run("openssl", ["x509", "-in", leafFile, "-noout", "-text"])).stdout;
      });

      test("node:crypto reads a server leaf signed by the CA, for the name", () => {
        assert.equal(leaf.ca, false);
        assert.ok(leaf.verify(caCert.publicKey), "signed by the CA key");
        assert.ok(leaf.checkIssued(caCert), "issued by the CA");
        assert.equal(leaf.issuer, caCert.subject);
        assert.equal(leaf.subjectAltName, c.san);
        if (isIP(c.name)) {
          assert.equal(leaf.checkIP(c.name), c.name);
        } else {
          assert.equal(leaf.checkHost(c.name, { subject: "never" }), c.name);
          assert.equal(leaf.checkHost(`x.${c.name}`), undefined, "no wildcard");
        }
        assert.equal(checkServerIdentity(c.name, leaf.toLegacyObject()), undefined);
      });

      test("the serial number is positive and at most 20 octets; validity lies within the CA's", () => {
        const serial = Buffer.from(leaf.serialNumber.padStart(2, "0"), "hex");
        assert.ok(serial.length >= 1 && serial.length <= 20, `serial of ${serial.length} octets`);
        assert.ok((serial[0] ?? 0) < 0x80 && serial.some((b) => b !== 0), "positive");
        const from = Date.parse(leaf.validFrom);
        const to = Date.parse(leaf.validTo);
        assert.ok(from < Date.now() && Date.now() < to, "valid now");
        assert.ok(from >= Date.parse(caCert.validFrom), "not valid before the CA");
        assert.ok(to <= Date.parse(caCert.validTo), "not valid after the CA");
      });

      test("openssl reads the RFC 5280 extensions a TLS server leaf needs", () => {
        assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE/);
        assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature\n/);
        assert.match(text, /X509v3 Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
        const subject = /Subject: ?(.*)\n/.exec(text)?.[1] ?? "";
        if (c.name.length <= 64) assert.equal(subject, `CN = ${c.name}`);
        else assert.equal(subject, "", "no common name over its 64-char bound");
        // An empty subject makes subjectAltName the only name: it must then be critical.
        const critical = subject === "" ? ": critical" : ": ?";
        assert.match(text, new RegExp(`X509v3 Subject Alternative Name${critical}\\n`));
        const ski = /X509v3 Subject Key Identifier: ?\n\s+([0-9A-F:]+)/.exec(text)?.[1];
        const aki = /X509v3 Authority Key Identifier: ?\n\s+(?:keyid:)?([0-9A-F:]+)/.exec(
          text,
        )?.[1];
        assert.ok(ski, "subjectKeyIdentifier");
        assert.ok(aki, "authorityKeyIdentifier");
        assert.notEqual(ski, aki);
        const caSki = /X509v3 Subject Key Identifier: ?\n\s+([0-9A-F:]+)/.exec(caText)?.[1];
        assert.equal(aki, caSki, "the AKI is the CA's SKI");
        if (c.ipOctets) {
          const der = leaf.raw;
          const tag = Buffer.from([0x87, c.ipOctets]);
          assert.ok(der.includes(tag), `an iPAddress of ${c.ipOctets} octets`);
        }
      });

      test("openssl verifies it, strictly, as a TLS server leaf for the name", async () => {
        const check = isIP(c.name) ? ["-verify_ip", c.name] : ["-verify_hostname", c.name];
        const verify = await run(
          "openssl",
          [
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            ...check,
            "-CAfile",
            caFile,
            leafFile,
          ],
          { okExitCodes: [0, 1, 2] },
        );
        assert.equal(verify.exitCode, 0, verify.stdout + verify.stderr);
        assert.equal(verify.stdout.trim(), `${leafFile}: OK`);
      });

      test("a TLS client trusting only the CA completes a handshake for the name", async () => {
        const server = createTlsServer({ key: ca.authority.leafKey, cert: pem }, (s) => s.end());
        await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
        try {
          const { port } = server.address() as AddressInfo;
          const peer = await new Promise<X509Certificate>((resolve, reject) => {
            const socket = tlsConnect(
              {
                host: "127.0.0.1",
                port,
                ca: ca.cert,
                // A server name is a DNS name (RFC 6066); an address is checked as the host.
                ...(isIP(c.name) ? {} : { servername: c.name }),
                checkServerIdentity: (_host, cert) => checkServerIdentity(c.name, cert),
              },
              () => {
                const cert = socket.getPeerX509Certificate();
                socket.destroy();
                if (cert) resolve(cert);
                else reject(new Error("no peer certificate"));
              },
            );
            socket.on("error", reject);
          });
          assert.equal(peer.fingerprint256, leaf.fingerprint256);
        } finally {
          await new Promise((r) => server.close(r));
        }
      });
    });
  }

  test("names that are neither a DNS name nor an address get no leaf", () => {
    for (const bad of ["*.example.test", "a..b", "-a.test", `${"x".repeat(64)}.test`, "", "a b"])
      assert.throws(() => ca.authority.mint(bad), /not a DNS name or an IP address/, bad);
  });

  test("a name cached under any spelling presents the same leaf", () => {
    assert.equal(
      ca.authority.context("Api.Example.Test."),
      ca.authority.context("api.example.test"),
    );
    assert.equal(
      ca.authority.context("::FFFF:192.0.2.7"),
      ca.authority.context("[::ffff:c000:207]"),
    );
  });

  test("an IPv6 zone is left out of the leaf", () => {
    const leaf = new X509Certificate(ca.authority.mint("fe80::1%eth0"));
    assert.equal(leaf.subjectAltName, "IP Address:FE80:0:0:0:0:0:0:1");
    assert.equal(leaf.checkIP("fe80::1"), "fe80::1");
  });

  /** A CA made by openssl with the given key and extensions, and a verified leaf it mints. */
  async function mintWith(name: string, keyArgs: string[], ...ext: string[]): Promise<void> {
    await mkdir(join(dir, name));
    const [certFile, keyFile, leafFile] = ["ca.crt", "ca.key", "leaf.pem"].map((f) =>
      join(dir, name, f),
    ) as [string, string, string];
    await run("openssl", [
      ...["req", "-x509", "-nodes", ...keyArgs, "-keyout", keyFile, "-out", certFile],
      ...["-days", "2", "-subj", `/O=bot-bottle tests/CN=${name}`],
      ...["-addext", "basicConstraints=critical,CA:TRUE"],
      ...["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
      ...ext.flatMap((e) => ["-addext", e]),
    ]);
    const authority = new CertificateAuthority(
      await readFile(certFile, "utf8"),
      await readFile(keyFile, "utf8"),
    );
    const pem = authority.mint("api.example.test");
    await writeFile(leafFile, pem);
    const leaf = new X509Certificate(pem);
    assert.ok(leaf.verify(new X509Certificate(await readFile(certFile)).publicKey));
    const verify = await run(
      "openssl",
      [
        ...["verify", "-x509_strict", "-purpose", "sslserver"],
        ...["-verify_hostname", "api.example.test", "-CAfile", certFile, leafFile],
      ],
      { okExitCodes: [0, 1, 2] },
    );
    assert.equal(verify.exitCode, 0, verify.stdout + verify.stderr);
  }

  test("a CA with an RSA, P-384 or Ed25519 key signs leaves with the matching algorithm", async () => {
    await mintWith("rsa", ["-newkey", "rsa:2048"]);
    await mintWith("p384", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"]);
    await mintWith("ed25519", ["-newkey", "ed25519"]);
  });

  test("the leaf's authorityKeyIdentifier is the CA's subjectKeyIdentifier, however made", async () => {
    await mintWith(
      "own-ski",
      ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
      "subjectKeyIdentifier=0123456789abcdef",
      "authorityKeyIdentifier=none",
    );
  });

  test("a CA certificate that is not a CA is refused", async () => {
    const other = await makeCa(dir, "other");
    const leafPem = other.authority.mint("leaf.example.test");
    assert.throws(() => new CertificateAuthority(leafPem, other.authority.leafKey), /not a CA/);
  });
});
