/**
 * The server name a TLS ClientHello asks for, read without decrypting anything: a passthrough
 * tunnel checks it against the CONNECT target before dialling. Returns "incomplete" until the
 * whole first record has arrived, "not-tls" for anything that is not a ClientHello.
 */
export type SniResult = { name: string | undefined } | "incomplete" | "not-tls";

export function readSni(data: Buffer): SniResult {
  if (data.length < 5) return "incomplete";
  if (data[0] !== 0x16 || data[1] !== 0x03) return "not-tls";
  const recordEnd = 5 + data.readUInt16BE(3);
  if (data.length < recordEnd) return "incomplete";
  let at = 5;
  if (data[at] !== 0x01) return "not-tls";
  at += 4; // handshake type and length
  at += 2 + 32; // client version, random
  const need = (n: number) => at + n <= recordEnd;
  if (!need(1)) return "not-tls";
  at += 1 + (data[at] ?? 0); // session id
  if (!need(2)) return "not-tls";
  at += 2 + data.readUInt16BE(at); // cipher suites
  if (!need(1)) return "not-tls";
  at += 1 + (data[at] ?? 0); // compression methods
  if (!need(2)) return { name: undefined };
  const extensionsEnd = Math.min(recordEnd, at + 2 + data.readUInt16BE(at));
  at += 2;
  while (at + 4 <= extensionsEnd) {
    const type = data.readUInt16BE(at);
    const size = data.readUInt16BE(at + 2);
    at += 4;
    if (type === 0 && at + 5 <= extensionsEnd) {
      // server_name_list: list length, then (type 0 = host_name, length, name)
      const nameType = data[at + 2];
      const nameLength = data.readUInt16BE(at + 3);
      if (nameType !== 0 || at + 5 + nameLength > extensionsEnd) return "not-tls";
      return { name: data.subarray(at + 5, at + 5 + nameLength).toString("latin1") };
    }
    at += size;
  }
  return { name: undefined };
}
