import assert from "node:assert/strict";
import { Duplex } from "node:stream";
import { describe, test } from "node:test";
import {
  checkUpgradeResponse,
  isWebSocketUpgrade,
  relayWebSocket,
  withoutExtensions,
  type RelayStats,
} from "../../../src/sidecars/egress/websocket.js";
import {
  FrameParser,
  ProtocolError,
  type FrameSink,
} from "../../../src/sidecars/egress/ws-frames.js";

// --- a reference codec, written independently of the one under test ---------------------------

interface Frame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

function frame(
  opcode: number,
  payload: Buffer | string,
  o: { fin?: boolean; mask?: boolean; rsv?: number; len?: "7" | "16" | "64"; claim?: bigint } = {},
): Buffer {
  const body = Buffer.from(payload);
  const mask = o.mask ?? true;
  const form = o.len ?? (body.length < 126 ? "7" : body.length < 65536 ? "16" : "64");
  const head: number[] = [((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode];
  const m = mask ? 0x80 : 0;
  const length = o.claim ?? BigInt(body.length);
  if (form === "7") head.push(m | Number(length));
  else if (form === "16") head.push(m | 126, Number(length) >> 8, Number(length) & 0xff);
  else {
    head.push(m | 127);
    for (let i = 7; i >= 0; i--) head.push(Number((length >> BigInt(8 * i)) & 0xffn));
  }
  if (!mask) return Buffer.concat([Buffer.from(head), body]);
  const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const masked = Buffer.from(body.map((b, i) => b ^ (key[i % 4] ?? 0)));
  return Buffer.concat([Buffer.from(head), key, masked]);
}

function parseAll(data: Buffer): Frame[] {
  const frames: Frame[] = [];
  let at = 0;
  while (at < data.length) {
    const b0 = data[at] ?? 0;
    const b1 = data[at + 1] ?? 0;
    let len = b1 & 0x7f;
    let p = at + 2;
    if (len === 126) {
      len = data.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      len = Number(data.readBigUInt64BE(p));
      p += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    let key: Buffer = Buffer.alloc(4);
    if (masked) {
      key = data.subarray(p, p + 4);
      p += 4;
    }
    const raw = data.subarray(p, p + len);
    const payload = Buffer.from(raw.map((b, i) => (masked ? b ^ (key[i % 4] ?? 0) : b)));
    assert.equal(b0 & 0x70, 0, "no reserved bits");
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, masked, payload });
    at = p + len;
  }
  return frames;
}

/** Whole messages (fragments joined) and control frames, in order. */
function messages(frames: Frame[]): { opcode: number; payload: string }[] {
  const out: { opcode: number; payload: string }[] = [];
  let current: { opcode: number; parts: Buffer[] } | undefined;
  for (const f of frames) {
    if (f.opcode & 0x8) {
      out.push({ opcode: f.opcode, payload: f.payload.toString("latin1") });
      continue;
    }
    if (f.opcode !== 0) current = { opcode: f.opcode, parts: [] };
    assert.ok(current, "a continuation follows a start");
    current.parts.push(f.payload);
    if (f.fin) {
      out.push({
        opcode: current.opcode,
        payload: Buffer.concat(current.parts).toString("latin1"),
      });
      current = undefined;
    }
  }
  return out;
}

function closeOf(frames: Frame[]): { code: number; reason: string } | undefined {
  const c = frames.find((f) => f.opcode === 8);
  return c && { code: c.payload.readUInt16BE(0), reason: c.payload.subarray(2).toString() };
}

// --- two ends of an in-memory connection -----------------------------------------------------

/** A connected pair: what one end writes, the other reads; ending one ends the other's reading. */
function duplexPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const make = (other: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        other().push(chunk);
        cb();
      },
      final(cb) {
        other().push(null);
        cb();
      },
    });
  ends.push(
    make(() => ends[1]!),
    make(() => ends[0]!),
  );
  return [ends[0]!, ends[1]!];
}

/** The far end of a pair: collects what it reads, ends when its peer ends. */
function peer(end: Duplex): { received: () => Frame[]; ended: Promise<void> } {
  const chunks: Buffer[] = [];
  end.on("data", (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve) =>
    end.on("end", () => {
      end.end();
      resolve();
    }),
  );
  return { received: () => parseAll(Buffer.concat(chunks)), ended };
}

const tick = () => new Promise((r) => setImmediate(r));

interface Finding {
  word: string;
}

/** A scan that finds "SECRET", holding back 5 bytes like the real one holds its overlap. */
function wordScan() {
  let tail = "";
  return {
    push(chunk: Buffer): { forward: Buffer; finding?: Finding } {
      const text = tail + chunk.toString("latin1");
      if (text.includes("SECRET")) return { forward: Buffer.alloc(0), finding: { word: "SECRET" } };
      const keep = Math.min(5, text.length);
      tail = text.slice(text.length - keep);
      return { forward: Buffer.from(text.slice(0, text.length - keep), "latin1") };
    },
    end(): Buffer {
      const rest = Buffer.from(tail, "latin1");
      tail = "";
      return rest;
    },
  };
}

/** Replaces "real-token" by "fake-token", holding back a possible start. */
function tokenRedactor() {
  let tail = "";
  return {
    push(chunk: Buffer): Buffer {
      const text = (tail + chunk.toString("latin1")).replaceAll("real-token", "fake-token");
      const keep = Math.min(9, text.length);
      tail = text.slice(text.length - keep);
      return Buffer.from(text.slice(0, text.length - keep), "latin1");
    },
    end(): Buffer {
      const rest = Buffer.from(tail, "latin1");
      tail = "";
      return rest;
    },
  };
}

function setup(o: { maxFrameBytes?: number; maxMessageBytes?: number; upstream?: Duplex } = {}) {
  const [agentNear, agentFar] = duplexPair();
  const [upNear, upFar] = o.upstream ? [o.upstream, undefined] : duplexPair();
  const findings: Finding[] = [];
  const closes: RelayStats[] = [];
  let done!: () => void;
  const closed = new Promise<void>((r) => (done = r));
  const handle = relayWebSocket<Finding>({
    agent: agentNear,
    upstream: upNear,
    scan: wordScan,
    redact: tokenRedactor,
    onFinding: (f) => findings.push(f),
    describe: (f) => `found ${f.word}`,
    onClose: (s) => {
      closes.push(s);
      done();
    },
    ...(o.maxFrameBytes ? { maxFrameBytes: o.maxFrameBytes } : {}),
    ...(o.maxMessageBytes ? { maxMessageBytes: o.maxMessageBytes } : {}),
  });
  const agent = peer(agentFar);
  const up = upFar ? peer(upFar) : undefined;
  return { agentFar, agentNear, upFar, upNear, agent, up, findings, closes, closed, handle };
}

// --- tests ------------------------------------------------------------------------------------

describe("websocket frame parser", () => {
  const collect = () => {
    const events: string[] = [];
    const sink: FrameSink = {
      dataStart: (h) => events.push(`start ${h.opcode} ${h.fin} ${h.length}`),
      dataPayload: (b) => events.push(`data ${b.toString()}`),
      dataEnd: () => events.push("end"),
      control: (op, p) => events.push(`control ${op} ${p.toString()}`),
    };
    return { events, sink };
  };

  test("a header split over many chunks, with 7-, 16- and 64-bit lengths", () => {
    for (const len of ["7", "16", "64"] as const) {
      const { events, sink } = collect();
      const parser = new FrameParser(true, 1 << 20, sink);
      const bytes = frame(1, "hello", { len });
      for (const b of bytes) parser.push(Buffer.from([b]));
      assert.deepEqual(events.join("").replaceAll("data ", ""), "start 1 true 5hello" + "end");
    }
  });

  test("a control frame arrives whole; nothing after a close is read", () => {
    const { events, sink } = collect();
    const parser = new FrameParser(false, 1 << 20, sink);
    parser.push(
      Buffer.concat([
        frame(9, "pi", { mask: false }).subarray(0, 3),
        frame(9, "pi", { mask: false }).subarray(3),
        frame(8, Buffer.from([3, 232]), { mask: false }),
        Buffer.from([0xff, 0xff, 0xff]),
      ]),
    );
    assert.deepEqual(events, ["control 9 pi", "control 8 \x03\uFFFD"]);
  });

  const rejects: [string, Buffer, boolean, number, RegExp][] = [
    ["RSV1 (compression)", frame(1, "x", { rsv: 4 }), true, 1002, /reserved/],
    ["RSV3", frame(2, "x", { rsv: 1 }), true, 1002, /reserved/],
    ["an unknown opcode", frame(3, "x"), true, 1002, /opcode 3/],
    ["an unmasked client frame", frame(1, "x", { mask: false }), true, 1002, /unmasked/],
    ["a masked server frame", frame(1, "x"), false, 1002, /masked frame from the server/],
    ["a fragmented ping", frame(9, "x", { fin: false }), true, 1002, /fragmented control/],
    ["a 126-byte ping", frame(9, Buffer.alloc(126), { len: "16" }), true, 1002, /longer than 125/],
    ["a length of 2^63", frame(2, "", { len: "64", claim: 1n << 63n }), true, 1002, /64-bit/],
    ["a length over the cap", frame(2, "", { len: "64", claim: 1n << 40n }), true, 1009, /limit/],
  ];
  for (const [what, bytes, fromClient, code, message] of rejects)
    test(`refuses ${what}`, () => {
      const parser = new FrameParser(fromClient, 1 << 20, collect().sink);
      assert.throws(
        () => {
          for (const b of bytes) parser.push(Buffer.from([b]));
        },
        (err) => err instanceof ProtocolError && err.code === code && message.test(err.message),
      );
    });
});

describe("websocket relay", () => {
  test("messages both ways, re-framed: masked to the upstream, unmasked to the agent", async () => {
    const t = setup();
    t.agentFar.write(frame(1, "hello upstream"));
    t.upFar!.write(frame(2, "hello agent", { mask: false }));
    await tick();
    const up = t.up!.received();
    assert.ok(up.every((f) => f.masked));
    assert.deepEqual(messages(up), [{ opcode: 1, payload: "hello upstream" }]);
    const down = t.agent.received();
    assert.ok(down.every((f) => !f.masked));
    assert.deepEqual(messages(down), [{ opcode: 2, payload: "hello agent" }]);
    t.handle.close(1001, "done");
    await t.closed;
  });

  test("fragments, a ping between them, long payloads and one-byte chunks", async () => {
    const t = setup();
    const big = "a".repeat(70_000);
    const bytes = Buffer.concat([
      frame(1, "first-", { fin: false }),
      frame(9, "ping!"),
      frame(0, "second-", { fin: false }),
      frame(0, "third"),
      frame(2, big),
      frame(1, "b".repeat(300)),
    ]);
    for (let i = 0; i < 200; i++) t.agentFar.write(bytes.subarray(i, i + 1));
    t.agentFar.write(bytes.subarray(200));
    await tick();
    assert.deepEqual(messages(t.up!.received()), [
      { opcode: 9, payload: "ping!" },
      { opcode: 1, payload: "first-second-third" },
      { opcode: 2, payload: big },
      { opcode: 1, payload: "b".repeat(300) },
    ]);
    assert.equal(t.closes.length, 0);
    t.handle.close(1000, "bye");
    await t.closed;
    assert.equal(t.closes[0]?.bytesOut, bytes.length);
  });

  test("a secret split over two fragments: nothing of it leaves, the agent gets 1008", async () => {
    const t = setup();
    t.agentFar.write(frame(1, "innocent text, then SEC", { fin: false }));
    await tick();
    t.agentFar.write(frame(0, "RET and more"));
    t.agentFar.write(frame(1, "after"));
    await Promise.all([t.closed, t.agent.ended, t.up!.ended]);
    const up = t.up!.received();
    const sent = up
      .filter((f) => f.opcode !== 8)
      .map((f) => f.payload.toString())
      .join("");
    assert.equal(sent, "innocent text, the");
    assert.ok(!sent.includes("SEC"));
    assert.equal(closeOf(up)?.code, 1008);
    assert.ok(!closeOf(up)?.reason.includes("SECRET"), "the upstream learns nothing of it");
    assert.deepEqual(closeOf(t.agent.received()), {
      code: 1008,
      reason: "bot-bottle: refused: found SECRET",
    });
    assert.deepEqual(t.findings, [{ word: "SECRET" }]);
    assert.equal(t.closes.length, 1);
    assert.match(t.closes[0]!.why, /refused/);
  });

  test("a control frame's payload is scanned too", async () => {
    const t = setup();
    t.agentFar.write(frame(9, "SECRET"));
    await t.closed;
    assert.equal(
      t.up!.received().filter((f) => f.opcode === 9).length,
      0,
      "the ping is not forwarded",
    );
    assert.equal(closeOf(t.agent.received())?.code, 1008);
    assert.equal(t.findings.length, 1);
  });

  test("what comes back is redacted, across frames and in control frames", async () => {
    const t = setup();
    t.upFar!.write(frame(1, "your token is real-to", { fin: false, mask: false }));
    t.upFar!.write(frame(0, "ken, ok", { mask: false }));
    t.upFar!.write(frame(9, "real-token", { mask: false }));
    await tick();
    assert.deepEqual(messages(t.agent.received()), [
      { opcode: 1, payload: "your token is fake-token, ok" },
      { opcode: 9, payload: "fake-token" },
    ]);
    t.handle.close(1000, "bye");
    await t.closed;
  });

  const protocolErrors: [string, Buffer[], number][] = [
    ["a compressed (RSV1) frame", [frame(1, "x", { rsv: 4 })], 1002],
    ["a frame claiming 2^63 bytes", [frame(2, "", { len: "64", claim: 1n << 63n })], 1002],
    ["a continuation with no start", [frame(0, "x")], 1002],
    ["a new message inside a fragmented one", [frame(1, "a", { fin: false }), frame(1, "b")], 1002],
    ["an unmasked frame", [frame(1, "x", { mask: false })], 1002],
    ["a frame over the cap", [frame(2, Buffer.alloc(2000))], 1009],
    [
      "a message over the cap",
      [frame(2, Buffer.alloc(600), { fin: false }), frame(0, Buffer.alloc(600))],
      1009,
    ],
    ["a close with a 1-byte body", [frame(8, "x")], 1002],
  ];
  for (const [what, frames, code] of protocolErrors)
    test(`${what} closes both sides with ${code}`, async () => {
      const t = setup({ maxFrameBytes: 1024, maxMessageBytes: 1000 });
      for (const f of frames) t.agentFar.write(f);
      await Promise.all([t.closed, t.agent.ended, t.up!.ended]);
      const down = closeOf(t.agent.received());
      assert.equal(down?.code, code);
      assert.match(down?.reason ?? "", /^bot-bottle: protocol error: /);
      const up = t.up!.received();
      assert.equal(closeOf(up)?.code, code);
      assert.ok(up.every((f) => f.masked));
      assert.equal(t.closes.length, 1);
      assert.match(t.closes[0]!.why, /protocol error/);
    });

  test("a masked frame from the upstream is a protocol error", async () => {
    const t = setup();
    t.upFar!.write(frame(1, "x"));
    await t.closed;
    assert.equal(closeOf(t.agent.received())?.code, 1002);
  });

  test("the proxy's close() sends both sides a close frame and ends them", async () => {
    const t = setup();
    t.handle.close(1001, "route removed");
    await Promise.all([t.closed, t.agent.ended, t.up!.ended]);
    assert.deepEqual(closeOf(t.agent.received()), {
      code: 1001,
      reason: "bot-bottle: route removed",
    });
    assert.equal(closeOf(t.up!.received())?.code, 1001);
    assert.equal(t.closes.length, 1);
    assert.equal(t.closes[0]!.why, "route removed");
    t.handle.close(1001, "again");
    assert.equal(t.closes.length, 1, "onClose is called once");
  });

  test("a reason that already names bot-bottle is not prefixed twice", async () => {
    const t = setup();
    t.handle.close(1008, "bot-bottle: the route was removed");
    await t.closed;
    assert.equal(closeOf(t.agent.received())?.reason, "bot-bottle: the route was removed");
  });

  test("a close handshake is forwarded both ways, then both sockets end", async () => {
    const t = setup();
    t.agentFar.write(frame(8, Buffer.from([0x03, 0xe8, 0x62, 0x79, 0x65])));
    await tick();
    assert.deepEqual(closeOf(t.up!.received()), { code: 1000, reason: "bye" });
    t.upFar!.write(frame(8, Buffer.from([0x03, 0xe8]), { mask: false }));
    await Promise.all([t.closed, t.agent.ended, t.up!.ended]);
    assert.deepEqual(closeOf(t.agent.received()), { code: 1000, reason: "" });
    assert.match(t.closes[0]!.why, /^closed/);
  });

  test("a side that already had a close frame is not sent a second one", async () => {
    const t = setup();
    t.agentFar.write(frame(8, Buffer.from([0x03, 0xe8])));
    await tick();
    t.handle.close(1001, "route removed");
    await Promise.all([t.closed, t.agent.ended, t.up!.ended]);
    assert.deepEqual(
      t.up!.received().map((f) => f.opcode),
      [8],
    );
    assert.equal(closeOf(t.up!.received())?.code, 1000);
    assert.equal(closeOf(t.agent.received())?.code, 1001);
  });

  test("bytes already read past the HTTP heads are relayed first", async () => {
    const [agentNear, agentFar] = duplexPair();
    const [upNear, upFar] = duplexPair();
    let stats: RelayStats | undefined;
    const handle = relayWebSocket<Finding>({
      agent: agentNear,
      upstream: upNear,
      agentHead: frame(1, "early"),
      upstreamHead: frame(1, "hi", { mask: false }),
      scan: wordScan,
      redact: () => undefined,
      onFinding: () => {},
      onClose: (s) => (stats = s),
    });
    const agent = peer(agentFar);
    const up = peer(upFar);
    await tick();
    assert.deepEqual(messages(up.received()), [{ opcode: 1, payload: "early" }]);
    assert.deepEqual(messages(agent.received()), [{ opcode: 1, payload: "hi" }]);
    handle.close(1000, "x");
    await Promise.all([agent.ended, up.ended]);
    await tick();
    assert.equal(stats?.bytesOut, frame(1, "early").length);
    assert.equal(stats?.bytesIn, frame(1, "hi", { mask: false }).length);
  });

  test("backpressure: the agent is paused while the upstream's buffer is over 1 MB", async () => {
    const held: (() => void)[] = [];
    const slow = new Duplex({
      read() {},
      write(_chunk, _enc, cb) {
        held.push(cb);
      },
      highWaterMark: 16 * 1024,
    });
    const t = setup({ upstream: slow });
    const payload = Buffer.alloc(512 * 1024, 0x61);
    for (let i = 0; i < 4; i++) t.agentFar.write(frame(2, payload));
    await tick();
    assert.ok(t.agentNear.isPaused(), "the agent's side is paused");
    while (slow.writableLength > 0) {
      while (held.length) held.shift()!();
      await tick();
    }
    await tick();
    assert.ok(!t.agentNear.isPaused(), "resumed on drain");
    t.handle.close(1000, "x");
    slow.destroy();
    await t.closed;
  });
});

describe("websocket handshake checks", () => {
  const good = {
    upgrade: "websocket",
    connection: "keep-alive, Upgrade",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
  };

  test("only a version-13 websocket GET is an upgrade the relay carries", () => {
    assert.ok(isWebSocketUpgrade({ method: "GET", headers: good }));
    assert.ok(isWebSocketUpgrade({ method: "GET", headers: { ...good, upgrade: "WebSocket" } }));
    for (const headers of [
      { ...good, upgrade: "h2c" },
      { ...good, upgrade: "websocket, h2c" },
      { ...good, connection: "keep-alive" },
      { ...good, "sec-websocket-key": undefined },
      { ...good, "sec-websocket-key": "short" },
      { ...good, "sec-websocket-version": "8" },
    ])
      assert.ok(!isWebSocketUpgrade({ method: "GET", headers }), JSON.stringify(headers));
    assert.ok(!isWebSocketUpgrade({ method: "POST", headers: good }));
  });

  test("extensions are dropped from the request and refused in the response", () => {
    assert.deepEqual(
      withoutExtensions({ ...good, "Sec-WebSocket-Extensions": "permessage-deflate" }),
      good,
    );
    const accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    const ok = { upgrade: "websocket", connection: "Upgrade", "sec-websocket-accept": accept };
    assert.equal(checkUpgradeResponse(ok, good["sec-websocket-key"]), undefined);
    assert.match(
      checkUpgradeResponse(
        { ...ok, "sec-websocket-extensions": "permessage-deflate" },
        good["sec-websocket-key"],
      ) ?? "",
      /extension/,
    );
    assert.match(checkUpgradeResponse({ ...ok, upgrade: "h2c" }) ?? "", /other than websocket/);
    assert.match(checkUpgradeResponse(ok, "AAAAAAAAAAAAAAAAAAAAAA==") ?? "", /Accept/);
  });
});
