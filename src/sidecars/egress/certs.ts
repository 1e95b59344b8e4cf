/**
 * Leaf certificates for TLS interception, signed by the bottle's CA. Node has no API to write an
 * X.509 certificate, so this encodes the few DER structures a leaf needs; node:crypto signs it.
 * Every leaf shares one EC P-256 key made at start (minting is then a signature, ~1 ms), and
 * leaves are cached per host name.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from "node:crypto";
import { isIP } from "node:net";
import { createSecureContext as tlsContext, type SecureContext } from "node:tls";

// --- DER, just enough of it ---------------------------------------------------------------

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...body: Buffer[]): Buffer {
  const content = Buffer.concat(body);
  return Buffer.concat([Buffer.from([tag]), length(content.length), content]);
}

const seq = (...parts: Buffer[]) => tlv(0x30, ...parts);

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split(".").map(Number);
  const bytes = [a * 40 + b];
  for (const n of rest) {
    const group = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128))
      group.unshift((v & 0x7f) | 0x80);
    bytes.push(...group);
  }
  return tlv(0x06, Buffer.from(bytes));
}

function positiveInteger(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return tlv(0x02, (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, "").slice(0, 14) + "Z";
  return date.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(iso.slice(2)))
    : tlv(0x18, Buffer.from(iso));
}

const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer) => tlv(0x03, Buffer.from([0]), b);

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [tlv(0x01, Buffer.from([0xff]))] : []), octets(value));
}

interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

function readTlv(der: Buffer, at: number): Tlv {
  const tag = der[at] ?? 0;
  let len = der[at + 1] ?? 0;
  let contentStart = at + 2;
  if (len & 0x80) {
    const count = len & 0x7f;
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + (der[at + 2 + i] ?? 0);
    contentStart += count;
  }
  return { tag, start: at, contentStart, end: contentStart + len };
}

function children(der: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.contentStart; at < parent.end;) {
    const t = readTlv(der, at);
    out.push(t);
    at = t.end;
  }
  return out;
}

/** The raw subject Name of a certificate: a leaf's issuer must be these exact bytes. */
function subjectOf(certDer: Buffer): Buffer {
  const tbs = children(certDer, readTlv(certDer, 0))[0];
  if (!tbs) throw new Error("CA certificate: no TBSCertificate");
  const fields = children(certDer, tbs);
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = fields[offset + 4];
  if (!subject) throw new Error("CA certificate: no subject");
  return certDer.subarray(subject.start, subject.end);
}

/** SHA-1 of a public key's bits: the key identifier OpenSSL puts in subjectKeyIdentifier. */
function keyId(key: KeyObject): Buffer {
  const spki = key.export({ type: "spki", format: "der" });
  const [, bitString] = children(spki, readTlv(spki, 0));
  if (!bitString) throw new Error("public key: no subjectPublicKey");
  return createHash("sha1")
    .update(spki.subarray(bitString.contentStart + 1, bitString.end))
    .digest();
}

// --- the authority ---------------------------------------------------------------------

const OID = {
  ecdsaSha256: "1.2.840.10045.4.3.2",
  rsaSha256: "1.2.840.113549.1.1.11",
  commonName: "2.5.4.3",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  subjectKeyId: "2.5.29.14",
  authorityKeyId: "2.5.29.35",
};

export class CertificateAuthority {
  private readonly caKey: KeyObject;
  private readonly issuer: Buffer;
  private readonly authorityKeyId: Buffer;
  private readonly notAfter: Date;
  private readonly leafKeyPem: string;
  private readonly leafSpki: Buffer;
  private readonly leafKeyId: Buffer;
  private readonly contexts = new Map<string, SecureContext>();

  constructor(
    caCertPem: string,
    caKeyPem: string,
    private readonly maxCached = 2000,
  ) {
    const ca = new X509Certificate(caCertPem);
    this.caKey = createPrivateKey(caKeyPem);
    if (!ca.checkPrivateKey(this.caKey))
      throw new Error("the CA key does not match the CA certificate");
    this.issuer = subjectOf(ca.raw);
    this.authorityKeyId = keyId(ca.publicKey);
    this.notAfter = new Date(ca.validTo);
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    this.leafKeyPem = pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    this.leafSpki = createPublicKey(pair.privateKey).export({ type: "spki", format: "der" });
    this.leafKeyId = keyId(pair.publicKey);
  }

  /** The key every leaf shares (PEM): for test servers that present a leaf without SNI. */
  get leafKey(): string {
    return this.leafKeyPem;
  }

  /** A PEM leaf certificate for `host` (a DNS name or an IP address). */
  mint(host: string, now = new Date()): string {
    const rsa = this.caKey.asymmetricKeyType === "rsa";
    const algorithm = rsa ? seq(oid(OID.rsaSha256), tlv(0x05)) : seq(oid(OID.ecdsaSha256));
    const ip = isIP(host);
    const san = ip
      ? tlv(0x87, ip === 4 ? Buffer.from(host.split(".").map(Number)) : ipv6Bytes(host))
      : tlv(0x82, Buffer.from(host, "ascii"));
    const cn =
      host.length <= 64 ? [tlv(0x31, seq(oid(OID.commonName), tlv(0x0c, Buffer.from(host))))] : [];
    const notBefore = new Date(now.getTime() - 24 * 3600_000);
    const serial = randomBytes(16);
    serial[0] = (serial[0] ?? 0) & 0x7f;
    const tbs = seq(
      tlv(0xa0, positiveInteger(Buffer.from([2]))),
      positiveInteger(serial),
      algorithm,
      this.issuer,
      seq(time(notBefore), time(this.notAfter)),
      seq(...cn),
      this.leafSpki,
      tlv(
        0xa3,
        seq(
          extension(OID.basicConstraints, true, seq()),
          extension(OID.keyUsage, true, tlv(0x03, Buffer.from([0x07, 0x80]))),
          extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
          extension(OID.subjectAltName, false, seq(san)),
          extension(OID.subjectKeyId, false, octets(this.leafKeyId)),
          extension(OID.authorityKeyId, false, seq(tlv(0x80, this.authorityKeyId))),
        ),
      ),
    );
    const signature = sign("sha256", tbs, this.caKey);
    const der = seq(tbs, algorithm, bits(signature));
    return `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n")}-----END CERTIFICATE-----\n`;
  }

  /** The TLS context presenting `host`'s leaf, minted once and cached. */
  context(host: string): SecureContext {
    let ctx = this.contexts.get(host);
    if (!ctx) {
      ctx = tlsContext({ key: this.leafKeyPem, cert: this.mint(host) });
      if (this.contexts.size >= this.maxCached) {
        const oldest = this.contexts.keys().next().value;
        if (oldest !== undefined) this.contexts.delete(oldest);
      }
      this.contexts.set(host, ctx);
    }
    return ctx;
  }
}

function ipv6Bytes(address: string): Buffer {
  const [head = "", tail = ""] = address.split("::");
  const parse = (s: string) => (s ? s.split(":").map((g) => parseInt(g, 16)) : []);
  const h = parse(head);
  const t = parse(tail);
  const groups = address.includes("::")
    ? [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t]
    : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}
