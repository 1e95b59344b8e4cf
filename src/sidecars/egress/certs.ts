/**
 * Leaf certificates for TLS interception, signed by the bottle's CA. Node has no API to write an
 * X.509 certificate, so this encodes the few DER structures a leaf needs (RFC 5280 profile of a
 * TLS server certificate); node:crypto signs it. Every leaf shares one EC P-256 key made at start
 * (minting is then a signature, ~1 ms), and leaves are cached per normalised host name.
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
import { normaliseDnsName } from "../../shared/hosts.js";

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

function tbsFields(certDer: Buffer): Tlv[] {
  const tbs = children(certDer, readTlv(certDer, 0))[0];
  if (!tbs) throw new Error("CA certificate: no TBSCertificate");
  return children(certDer, tbs);
}

/** The raw subject Name of a certificate: a leaf's issuer must be these exact bytes. */
function subjectOf(certDer: Buffer): Buffer {
  const fields = tbsFields(certDer);
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = fields[offset + 4];
  if (!subject) throw new Error("CA certificate: no subject");
  return certDer.subarray(subject.start, subject.end);
}

/** The extnValue (the DER inside the OCTET STRING) of a certificate's extension, if it has it. */
function extensionOf(certDer: Buffer, id: string): Buffer | undefined {
  const wanted = oid(id);
  const wrapper = tbsFields(certDer).find((f) => f.tag === 0xa3);
  const list = wrapper && children(certDer, wrapper)[0];
  if (!list) return undefined;
  for (const ext of children(certDer, list)) {
    const [extnId, ...rest] = children(certDer, ext);
    const value = rest[rest.length - 1];
    if (extnId && value && certDer.subarray(extnId.start, extnId.end).equals(wanted))
      return certDer.subarray(value.contentStart, value.end);
  }
  return undefined;
}

/** SHA-1 of a public key's bits: RFC 5280's method (1) for a subjectKeyIdentifier. */
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
  ecdsaSha384: "1.2.840.10045.4.3.3",
  ecdsaSha512: "1.2.840.10045.4.3.4",
  rsaSha256: "1.2.840.113549.1.1.11",
  ed25519: "1.3.101.112",
  ed448: "1.3.101.113",
  commonName: "2.5.4.3",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  subjectKeyId: "2.5.29.14",
  authorityKeyId: "2.5.29.35",
};

/** How the CA's key signs: the AlgorithmIdentifier a certificate names, and the digest to use. */
function signatureAlgorithm(key: KeyObject): { id: Buffer; digest: string | null } {
  const type = key.asymmetricKeyType;
  // sha256WithRSAEncryption takes NULL parameters (RFC 4055).
  if (type === "rsa") return { id: seq(oid(OID.rsaSha256), tlv(0x05)), digest: "sha256" };
  if (type === "ec") {
    // ECDSA names no parameters (RFC 5758); the digest follows the curve's size.
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === "secp384r1") return { id: seq(oid(OID.ecdsaSha384)), digest: "sha384" };
    if (curve === "secp521r1") return { id: seq(oid(OID.ecdsaSha512)), digest: "sha512" };
    return { id: seq(oid(OID.ecdsaSha256)), digest: "sha256" };
  }
  if (type === "ed25519") return { id: seq(oid(OID.ed25519)), digest: null };
  if (type === "ed448") return { id: seq(oid(OID.ed448)), digest: null };
  throw new Error(`the CA key type ${type ?? "?"} is not supported`);
}

/** The Name attribute commonName has an upper bound of 64 characters (RFC 5280, ub-common-name). */
const MAX_COMMON_NAME = 64;

/** What a leaf names: a DNS name in A-labels, lower case, no trailing dot; or an IP address. */
type Subject = { kind: "dns"; name: string } | { kind: "ip"; name: string; bytes: Buffer };

/** `host` as a leaf names it, or undefined when it is neither a DNS name nor an IP address. */
function subjectFor(host: string): Subject | undefined {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  // An IPv6 zone (fe80::1%eth0) is local to a host: no certificate names it.
  const address = (bare.includes(":") ? bare.replace(/%.*$/, "") : bare).toLowerCase();
  if (isIP(address) === 4) return { kind: "ip", name: address, bytes: ipv4Bytes(address) };
  if (isIP(address) === 6) {
    const bytes = ipv6Bytes(address);
    return bytes && { kind: "ip", name: address, bytes };
  }
  // Not a wildcard: "*" is no label of a name, so a leaf never covers more than one host.
  const name = normaliseDnsName(host);
  return name === undefined ? undefined : { kind: "dns", name };
}

export class CertificateAuthority {
  private readonly caKey: KeyObject;
  private readonly algorithm: { id: Buffer; digest: string | null };
  private readonly issuer: Buffer;
  private readonly authorityKeyId: Buffer;
  private readonly notBefore: Date;
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
    if (!ca.ca) throw new Error("the CA certificate is not a CA (basicConstraints CA:TRUE)");
    this.caKey = createPrivateKey(caKeyPem);
    if (!ca.checkPrivateKey(this.caKey))
      throw new Error("the CA key does not match the CA certificate");
    this.algorithm = signatureAlgorithm(this.caKey);
    this.issuer = subjectOf(ca.raw);
    // The leaf's authorityKeyIdentifier is the CA's own subjectKeyIdentifier when it has one
    // (OpenSSL refuses a chain where they differ), else the key's SHA-1.
    const caSki = extensionOf(ca.raw, OID.subjectKeyId);
    const skiTlv = caSki && readTlv(caSki, 0);
    this.authorityKeyId =
      caSki && skiTlv?.tag === 0x04
        ? caSki.subarray(skiTlv.contentStart, skiTlv.end)
        : keyId(ca.publicKey);
    this.notBefore = new Date(ca.validFrom);
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

  /**
   * A PEM leaf certificate for `host`: a DNS name (U-labels become A-labels) or an IP address.
   * Throws for anything else, wildcards included.
   */
  mint(host: string, now = new Date()): string {
    const subject = subjectFor(host);
    if (!subject) throw new Error(`"${host}" is not a DNS name or an IP address`);
    return this.mintFor(subject, now);
  }

  private mintFor(subject: Subject, now: Date): string {
    // GeneralName: dNSName [2] IA5String (ASCII only, guaranteed by the A-labels), iPAddress [7]
    // OCTET STRING of 4 octets (IPv4) or 16 (IPv6, an IPv4-mapped one included).
    const san =
      subject.kind === "ip"
        ? tlv(0x87, subject.bytes)
        : tlv(0x82, Buffer.from(subject.name, "ascii"));
    // A name over commonName's bound leaves the subject empty, and then subjectAltName, the only
    // name left, is critical (RFC 5280 4.1.2.6, 4.2.1.6).
    const cn =
      subject.name.length <= MAX_COMMON_NAME
        ? [tlv(0x31, seq(oid(OID.commonName), tlv(0x0c, Buffer.from(subject.name, "utf8"))))]
        : [];
    // Back-dated a day for clock skew, never before the CA itself; valid until the CA expires.
    const dayBefore = new Date(now.getTime() - 24 * 3600_000);
    const notBefore = new Date(
      Math.min(Math.max(dayBefore.getTime(), this.notBefore.getTime()), this.notAfter.getTime()),
    );
    // 16 random octets, the top bit clear and the next set: positive, non-zero, 16 octets in DER.
    const serial = randomBytes(16);
    serial[0] = ((serial[0] ?? 0) & 0x3f) | 0x40;
    const tbs = seq(
      tlv(0xa0, positiveInteger(Buffer.from([2]))),
      positiveInteger(serial),
      this.algorithm.id,
      this.issuer,
      seq(time(notBefore), time(this.notAfter)),
      seq(...cn),
      this.leafSpki,
      tlv(
        0xa3,
        seq(
          // basicConstraints with cA FALSE (the DEFAULT, so omitted in DER): an end entity.
          extension(OID.basicConstraints, true, seq()),
          // keyUsage digitalSignature only (the leaf key is ECDSA): BIT STRING 7 unused bits.
          extension(OID.keyUsage, true, tlv(0x03, Buffer.from([0x07, 0x80]))),
          extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
          extension(OID.subjectAltName, cn.length === 0, seq(san)),
          extension(OID.subjectKeyId, false, octets(this.leafKeyId)),
          extension(OID.authorityKeyId, false, seq(tlv(0x80, this.authorityKeyId))),
        ),
      ),
    );
    const signature = sign(this.algorithm.digest, tbs, this.caKey);
    const der = seq(tbs, this.algorithm.id, bits(signature));
    return `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n")}-----END CERTIFICATE-----\n`;
  }

  /** The TLS context presenting `host`'s leaf, minted once per normalised name and cached. */
  context(host: string): SecureContext {
    const subject = subjectFor(host);
    if (!subject) throw new Error(`"${host}" is not a DNS name or an IP address`);
    // An address is cached by its octets: "::ffff:192.0.2.7" and "::ffff:c000:207" are one host.
    const key = subject.kind === "ip" ? subject.bytes.toString("hex") : subject.name;
    let ctx = this.contexts.get(key);
    if (!ctx) {
      ctx = tlsContext({ key: this.leafKeyPem, cert: this.mintFor(subject, new Date()) });
      if (this.contexts.size >= this.maxCached) {
        const oldest = this.contexts.keys().next().value;
        if (oldest !== undefined) this.contexts.delete(oldest);
      }
      this.contexts.set(key, ctx);
    }
    return ctx;
  }
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split(".").map(Number));
}

/** The 16 octets of an IPv6 address, a trailing dotted IPv4 part (::ffff:1.2.3.4) included. */
function ipv6Bytes(address: string): Buffer | undefined {
  let text = address;
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    const [a = 0, b = 0, c = 0, d = 0] = ipv4Bytes(tail);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", rest = ""] = text.split("::");
  const parse = (s: string) => (s ? s.split(":").map((g) => parseInt(g, 16)) : []);
  const h = parse(head);
  const t = parse(rest);
  const groups = text.includes("::")
    ? [...h, ...Array<number>(Math.max(0, 8 - h.length - t.length)).fill(0), ...t]
    : h;
  if (groups.length !== 8 || groups.some((g) => !(g >= 0 && g <= 0xffff))) return undefined;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}
