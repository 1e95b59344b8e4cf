/**
 * WebSocket frames (RFC 6455) for the egress relay: an incremental parser that delivers each
 * frame's payload unmasked as its bytes arrive and throws on the first frame the relay will not
 * carry (reserved bits, unknown opcodes, wrong masking, oversized or fragmented control frames,
 * lengths past the cap), and the encoder for the frames the relay writes itself.
 */
import { randomBytes } from "node:crypto";

export const Opcode = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

const KNOWN_OPCODES: ReadonlySet<number> = new Set(Object.values(Opcode));

/** A frame the relay will not carry: 1002 (protocol error) or 1009 (message too big). */
export class ProtocolError extends Error {
  constructor(
    readonly code: 1002 | 1009,
    message: string,
  ) {
    super(message);
  }
}

export interface FrameHeader {
  fin: boolean;
  opcode: number;
  length: number;
}

/** What a parser delivers, in order. Payloads are unmasked. */
export interface FrameSink {
  dataStart(header: FrameHeader): void;
  dataPayload(bytes: Buffer): void;
  dataEnd(header: FrameHeader): void;
  /** A whole control frame (ping, pong, close). */
  control(opcode: number, payload: Buffer): void;
}

/** XORs `data` with `key` starting at `offset` bytes into the frame's payload, into a new buffer. */
function xorMask(data: Buffer, key: Buffer, offset: number): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  const k0 = key[offset & 3] ?? 0;
  const k1 = key[(offset + 1) & 3] ?? 0;
  const k2 = key[(offset + 2) & 3] ?? 0;
  const k3 = key[(offset + 3) & 3] ?? 0;
  const n = data.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    out[i] = (data[i] ?? 0) ^ k0;
    out[i + 1] = (data[i + 1] ?? 0) ^ k1;
    out[i + 2] = (data[i + 2] ?? 0) ^ k2;
    out[i + 3] = (data[i + 3] ?? 0) ^ k3;
  }
  for (; i < n; i++) out[i] = (data[i] ?? 0) ^ (key[(offset + i) & 3] ?? 0);
  return out;
}

/**
 * An incremental frame parser for one direction: bytes in, in chunks of any size (a header may
 * arrive a byte at a time); frames out to the sink as soon as their bytes are here, data
 * payloads in pieces, never buffered whole. Throws ProtocolError on the first frame it will not
 * carry. Nothing after a close frame is read.
 */
export class FrameParser {
  private readonly head = Buffer.alloc(14);
  private have = 0;
  private need = 2;
  private sized = false;
  private header: FrameHeader | undefined;
  private remaining = 0;
  private offset = 0;
  private masked = false;
  private readonly key = Buffer.alloc(4);
  private controlPayload: Buffer[] = [];
  private closed = false;

  /**
   * @param fromClient frames from the client must be masked, frames from the server must not be
   * @param maxFrameBytes a data frame claiming more is refused with 1009
   */
  constructor(
    private readonly fromClient: boolean,
    private readonly maxFrameBytes: number,
    private readonly sink: FrameSink,
  ) {}

  push(chunk: Buffer): void {
    let i = 0;
    while (!this.closed) {
      if (this.header === undefined) {
        const take = Math.min(this.need - this.have, chunk.length - i);
        chunk.copy(this.head, this.have, i, i + take);
        this.have += take;
        i += take;
        if (this.have < this.need) return;
        if (!this.sized) {
          this.need = this.headerLength();
          this.sized = true;
          if (this.have < this.need) continue;
        }
        this.begin();
        continue;
      }
      if (i >= chunk.length) return;
      const take = Math.min(this.remaining, chunk.length - i);
      this.payload(chunk.subarray(i, i + take));
      i += take;
    }
  }

  /** Checks the first two bytes; the whole header's length. */
  private headerLength(): number {
    const b0 = this.head[0] ?? 0;
    const b1 = this.head[1] ?? 0;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    if (b0 & 0x70) throw new ProtocolError(1002, "reserved bits set (no extension was negotiated)");
    if (!KNOWN_OPCODES.has(opcode)) throw new ProtocolError(1002, `unknown opcode ${opcode}`);
    if (masked !== this.fromClient)
      throw new ProtocolError(
        1002,
        this.fromClient ? "an unmasked frame from the client" : "a masked frame from the server",
      );
    if (opcode & 0x8) {
      if (!(b0 & 0x80)) throw new ProtocolError(1002, "a fragmented control frame");
      if (len7 > 125) throw new ProtocolError(1002, "a control frame longer than 125 bytes");
    }
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
  }

  private begin(): void {
    const b0 = this.head[0] ?? 0;
    const b1 = this.head[1] ?? 0;
    let length = b1 & 0x7f;
    let at = 2;
    if (length === 126) {
      length = this.head.readUInt16BE(2);
      at = 4;
    } else if (length === 127) {
      const high = this.head.readUInt32BE(2);
      if (high & 0x80000000)
        throw new ProtocolError(1002, "a 64-bit frame length with the most significant bit set");
      length = high * 2 ** 32 + this.head.readUInt32BE(6);
      at = 10;
    }
    this.masked = (b1 & 0x80) !== 0;
    if (this.masked) this.head.copy(this.key, 0, at, at + 4);
    const header = { fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, length };
    if (!(header.opcode & 0x8) && length > this.maxFrameBytes)
      throw new ProtocolError(
        1009,
        `a frame of ${length} bytes (the limit is ${this.maxFrameBytes})`,
      );
    this.header = header;
    this.remaining = length;
    this.offset = 0;
    this.have = 0;
    this.need = 2;
    this.sized = false;
    if (!(header.opcode & 0x8)) this.sink.dataStart(header);
    if (length === 0) this.finish(header);
  }

  private payload(piece: Buffer): void {
    const header = this.header;
    if (header === undefined) return;
    const bytes = this.masked ? xorMask(piece, this.key, this.offset) : piece;
    this.offset += bytes.length;
    this.remaining -= bytes.length;
    if (header.opcode & 0x8) this.controlPayload.push(bytes);
    else if (bytes.length) this.sink.dataPayload(bytes);
    if (this.remaining === 0) this.finish(header);
  }

  private finish(header: FrameHeader): void {
    this.header = undefined;
    if (!(header.opcode & 0x8)) return this.sink.dataEnd(header);
    const payload = Buffer.concat(this.controlPayload);
    this.controlPayload = [];
    if (header.opcode === Opcode.close) this.closed = true;
    this.sink.control(header.opcode, payload);
  }
}

let maskPool = Buffer.alloc(0);
let maskAt = 0;

function freshMask(): Buffer {
  if (maskAt + 4 > maskPool.length) {
    maskPool = randomBytes(4096);
    maskAt = 0;
  }
  maskAt += 4;
  return maskPool.subarray(maskAt - 4, maskAt);
}

/** One frame, as the buffers to write: masked with a fresh random key when `mask` (client→server). */
export function encodeFrame(
  opcode: number,
  fin: boolean,
  payload: Buffer,
  mask: boolean,
): Buffer[] {
  const length = payload.length;
  const ext = length < 126 ? 0 : length < 0x10000 ? 2 : 8;
  const head = Buffer.allocUnsafe(2 + ext + (mask ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? length : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(length, 2);
  if (ext === 8) {
    head.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    head.writeUInt32BE(length >>> 0, 6);
  }
  if (!mask) return length ? [head, payload] : [head];
  const key = freshMask();
  key.copy(head, 2 + ext);
  return length ? [head, xorMask(payload, key, 0)] : [head];
}

/** A close frame's payload: the code and a reason cut to fit the 125-byte limit. */
export function closePayload(code: number, reason: string): Buffer {
  // Printable ASCII only, so the cut never splits a character.
  const text = reason.replace(/[^\x20-\x7e]/g, "?").slice(0, 123);
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  payload.write(text, 2, "latin1");
  return payload;
}

/** Codes an endpoint may send in a close frame (RFC 6455 7.4, plus the registered 1012-1014). */
export function validCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1003) ||
    (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999)
  );
}
