import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  addressPoolOf,
  DEFAULT_SUBNET_POOL,
  formatCidr,
  freeCount,
  freeSlots,
  overlaps,
  parseCidr,
  pickFree,
  poolCapacity,
  type Subnet,
} from "../../../src/backends/address-pool.js";
import { BotBottleError } from "../../../src/errors.js";

const cidr = (text: string): Subnet => {
  const s = parseCidr(text);
  assert.ok(s, text);
  return s;
};

describe("IPv4 ranges", () => {
  test("parse and print back, and only whole ranges parse", () => {
    assert.equal(formatCidr(cidr("10.213.0.0/16")), "10.213.0.0/16");
    assert.equal(formatCidr(cidr("255.255.255.240/28")), "255.255.255.240/28");
    assert.equal(formatCidr(cidr("0.0.0.0/0")), "0.0.0.0/0");
    for (const bad of ["10.213.1.0/16", "10.213.0.0", "256.0.0.0/8", "10.0.0.0/33", "fd00::/64"])
      assert.equal(parseCidr(bad), undefined, bad);
  });

  test("overlap is any shared address, at either end", () => {
    assert.ok(overlaps(cidr("10.0.0.0/8"), cidr("10.213.4.16/28")));
    assert.ok(overlaps(cidr("10.213.4.16/28"), cidr("10.213.4.16/29")));
    assert.ok(!overlaps(cidr("10.213.4.16/28"), cidr("10.213.4.32/28")));
    assert.ok(!overlaps(cidr("10.213.4.0/28"), cidr("10.213.4.16/28")));
  });
});

describe("the pool from BOT_BOTTLE_SUBNET_POOL", () => {
  test("is the default when unset or empty", () => {
    for (const env of [{}, { BOT_BOTTLE_SUBNET_POOL: " " }])
      assert.deepEqual(addressPoolOf(env), {
        cidr: DEFAULT_SUBNET_POOL,
        prefix: 28,
        setBy: "default",
      });
  });

  test("takes any private range of a /27 or larger", () => {
    for (const value of ["10.50.0.0/20", "172.20.0.0/16", "192.168.200.0/24", "100.64.0.0/27"])
      assert.deepEqual(addressPoolOf({ BOT_BOTTLE_SUBNET_POOL: value }), {
        cidr: value,
        prefix: 28,
        setBy: "BOT_BOTTLE_SUBNET_POOL",
      });
  });

  const refusals: [string, RegExp][] = [
    ["10.213.0.0", /is not an IPv4 range like 10\.213\.0\.0\/16/],
    ["fd00::/64", /is not an IPv4 range/],
    ["10.213.7.0/16", /has bits set past its \/16: the range starts at 10\.213\.0\.0/],
    ["8.8.0.0/16", /is not a private range/],
    ["10.0.0.0/7", /is not a private range/],
    [
      "10.213.0.0/28",
      /too small: one bottle takes two \/28s, so the pool must be a \/27 or larger/,
    ],
  ];
  for (const [value, message] of refusals)
    test(`refuses ${value}, naming the variable and what to write`, () => {
      assert.throws(
        () => addressPoolOf({ BOT_BOTTLE_SUBNET_POOL: value }),
        (err: unknown) => {
          assert.ok(err instanceof BotBottleError);
          assert.match(err.message, /^BOT_BOTTLE_SUBNET_POOL="/);
          assert.match(err.message, message);
          assert.match(err.hint ?? "", /10\.213\.0\.0\/16|write 10\.213\.0\.0\/16/);
          assert.equal(err.exitCode, 2);
          return true;
        },
      );
    });
});

describe("carving the pool", () => {
  const pool = addressPoolOf({ BOT_BOTTLE_SUBNET_POOL: "10.77.0.0/26" });

  test("a /26 holds four /28s: two bottles", () => {
    assert.equal(freeCount(freeSlots(pool, [])), 4);
    assert.equal(poolCapacity(pool), 2);
    assert.equal(poolCapacity(addressPoolOf({})), 2048);
  });

  test("a pick never overlaps what is taken, whatever the random draw", () => {
    const taken = [cidr("10.77.0.0/28"), cidr("10.77.0.32/29"), cidr("192.168.0.0/16")];
    const seen = new Set<string>();
    for (const r of [0, 0.3, 0.6, 0.999]) {
      const s = pickFree(pool, taken, () => r);
      assert.ok(s);
      assert.equal(s.prefix, 28);
      assert.ok(overlaps(s, cidr(pool.cidr)));
      assert.ok(!taken.some((t) => overlaps(t, s)), formatCidr(s));
      seen.add(formatCidr(s));
    }
    // Every free /28 can be drawn: 10.77.0.16 and 10.77.0.48 (a /29 spoils 10.77.0.32/28).
    assert.deepEqual([...seen].sort(), ["10.77.0.16/28", "10.77.0.48/28"]);
  });

  test("a route that covers the pool, or a full pool, leaves nothing to pick", () => {
    assert.equal(pickFree(pool, [cidr("10.0.0.0/8")]), undefined);
    const full = ["10.77.0.0/28", "10.77.0.16/28", "10.77.0.32/28", "10.77.0.48/28"].map(cidr);
    assert.equal(freeCount(freeSlots(pool, full)), 0);
    assert.equal(pickFree(pool, full), undefined);
  });

  test("gaps are counted without walking a large pool", () => {
    const big = addressPoolOf({ BOT_BOTTLE_SUBNET_POOL: "10.0.0.0/8" });
    const taken = [cidr("10.0.0.0/9"), cidr("10.200.0.5/32")];
    // Half the /8 is taken, and one /28 holds the /32.
    assert.equal(freeCount(freeSlots(big, taken)), 2 ** 19 - 1);
  });
});
