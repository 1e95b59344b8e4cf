import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  AgentKey,
  keyRefusal,
  needsKey,
  presentedKey,
  PROXY_AUTH_TAG,
} from "../../../src/sidecars/egress/agent-key.js";

const KEY = "3f1c0a9e8b7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170615e4d3";
const b64 = (text: string) => Buffer.from(text).toString("base64");
const header = (value: string) => ["Host", "x.test:443", "Proxy-Authorization", value];
const keyOf = (raw: string[]) => {
  const p = presentedKey(raw);
  return typeof p === "string" ? p : p.key.toString("latin1");
};

describe("the agent's proxy key", () => {
  test("Basic user:key gives the key after the first colon; any user name, any case of Basic", () => {
    assert.equal(keyOf(header(`Basic ${b64(`agent:${KEY}`)}`)), KEY);
    assert.equal(keyOf(header(`basic ${b64(`:${KEY}`)}`)), KEY);
    assert.equal(keyOf(header(`BASIC   ${b64(`Agent Smith:${KEY}`)}`)), KEY);
    // A colon in the password stays in it.
    assert.equal(keyOf(header(`Basic ${b64("u:a:b")}`)), "a:b");
    // Padding may be left off, as some clients do.
    assert.equal(keyOf(header(`Basic ${b64("agent:ab").replace(/=+$/, "")}`)), "ab");
  });

  test("no header is missing; another scheme, bad base64, no colon or two lines are malformed", () => {
    assert.equal(keyOf(["Host", "x"]), "missing");
    for (const value of [
      `Bearer ${KEY}`,
      KEY,
      "Basic",
      "Basic ",
      `Basic ${b64(KEY)}`,
      `Basic ${b64(`agent:${KEY}`)}!`,
      `Basic ${b64("agent:ab")}=`,
      `Basic ${b64("agent:abc").slice(0, -1)}`,
      // Both decode to "a:", but neither is how base64 spells it.
      "Basic YTo==",
      "Basic YTp=",
      `Basic ${b64("agent:a")} ${b64("agent:b")}`,
    ])
      assert.equal(keyOf(header(value)), "malformed", value);
    assert.equal(
      keyOf([...header(`Basic ${b64(`a:${KEY}`)}`), "proxy-authorization", `Basic ${b64("a:x")}`]),
      "malformed",
      "two lines, even when one holds the key",
    );
  });

  test("the key matches only itself, and an empty key is never made", () => {
    const key = new AgentKey(KEY);
    assert.ok(key.matches(Buffer.from(KEY)));
    for (const other of ["", KEY.slice(1), KEY + "0", KEY.toUpperCase(), `${KEY}\n`])
      assert.ok(!key.matches(Buffer.from(other)), JSON.stringify(other.slice(0, 4)));
    assert.throws(() => new AgentKey(""));
  });

  test("CONNECT and absolute-form targets need the key; origin-form requests do not", () => {
    assert.ok(needsKey("CONNECT", "api.example.com:443"));
    assert.ok(needsKey("GET", "http://api.example.com/"));
    assert.ok(needsKey("GET", "HTTPS://api.example.com/"));
    assert.ok(needsKey("POST", "ftp://x/"));
    for (const url of ["/", "/http://x/", "*", "api.example.com:443", undefined])
      assert.ok(!needsKey("GET", url), String(url));
  });

  test("a refusal names what is wrong in its tag and reason, never the value presented", () => {
    const key = new AgentKey(KEY);
    const wrong = "f".repeat(64);
    const req = (auth?: string) => ({
      method: "CONNECT",
      url: "api.example.com:443",
      rawHeaders: auth === undefined ? [] : ["Proxy-Authorization", auth],
    });
    assert.equal(keyRefusal(key, req(`Basic ${b64(`agent:${KEY}`)}`)), undefined);
    assert.equal(keyRefusal(undefined, req()), undefined, "no key asked for: nothing checked");
    for (const auth of [undefined, `Basic ${b64(`agent:${wrong}`)}`, `Bearer ${wrong}`, wrong]) {
      const r = keyRefusal(key, req(auth));
      assert.equal(r?.tag, PROXY_AUTH_TAG);
      assert.match(r?.reason ?? "", /^bot-bottle: /);
      for (const value of [KEY, wrong, b64(`agent:${wrong}`)])
        assert.ok(!r?.reason.includes(value));
    }
    assert.equal(
      keyRefusal(key, { method: "GET", url: "/", rawHeaders: [] }),
      undefined,
      "origin-form keeps its own answer",
    );
  });
});
