import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Redactor, SecretScanner } from "../../../src/sidecars/dlp.js";

const none = new Set<string>();
const SECRET = "s3cr3t-value/0123456789+abcdef";
const NAMED = "n4me-secret-0123456789abcdef";
const SPACED = "pass phrase 0123456789";
const PLACEHOLDER = "pl4ceh0lder-0123456789-zzzzzz";
const OTHER = "0th3r-placeholder-9876543210";
const scanner = new SecretScanner(
  [
    { name: "TOKEN", value: SECRET },
    { name: "NAMED", value: NAMED },
    { name: "SPACED", value: SPACED },
  ],
  [
    { name: "TOKEN", value: PLACEHOLDER },
    { name: "OTHER", value: OTHER },
  ],
);
const allowed = new Set(["TOKEN"]);

const jsonEscape = (s: string, upper = false) =>
  [...s]
    .map((c) => {
      const hex = c.charCodeAt(0).toString(16).padStart(4, "0");
      return "\\u" + (upper ? hex.toUpperCase() : hex);
    })
    .join("");
const percent = (s: string, upper = false) =>
  [...Buffer.from(s)]
    .map((b) => "%" + (upper ? b.toString(16).toUpperCase() : b.toString(16)).padStart(2, "0"))
    .join("");

/** Real keys of every shape, each with a near miss that is not one. */
const SHAPES: { name: string; key: string; miss: string }[] = [
  {
    name: "anthropic-key",
    key: "sk-ant-api03-A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6_-xy",
    miss: "sk-ant-api03-A1b2C3d4E5f6G7h8I9j",
  },
  {
    name: "openai-key",
    key: "sk-proj-" + "Ab12".repeat(5) + "T3BlbkFJ" + "Cd34".repeat(5),
    miss: "sk-" + "Ab12".repeat(5) + "T3BlbkFX" + "Cd34".repeat(5),
  },
  {
    name: "openai-key",
    key: "sk-svcacct-" + "Zq9_".repeat(11),
    miss: "sk-svc-" + "Zq9_".repeat(3),
  },
  { name: "aws-access-key-id", key: "AKIAIOSFODNN7EXAMPLE", miss: "AKIAIOSFODNN7EXAMPL" },
  {
    name: "aws-secret-key",
    key: 'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
    miss: 'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE"',
  },
  {
    name: "github-token",
    key: "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    miss: "ghp_0123456789abcdefghijABCDEFGHIJ01234",
  },
  {
    name: "github-token",
    key: "github_pat_" + "A1_b".repeat(13),
    miss: "github_pat_" + "A1_b".repeat(12),
  },
  { name: "gitlab-token", key: "glpat-" + "xY1-".repeat(5), miss: "glpat-" + "xY1-".repeat(4) },
  { name: "slack-token", key: "xoxb-1234567890-abc", miss: "xoxq-1234567890-abc" },
  {
    name: "slack-token",
    key: "https://hooks.slack.com/services/T0000AAAA/B1111BBBB/abcdefghijklmnopqrstuvwx",
    miss: "https://hooks.slack.com/services/T0000AAAA/B1111BBBB/abcdefghijklmno",
  },
  { name: "stripe-key", key: "rk_live_" + "a1B2".repeat(6), miss: "sk_test_" + "a1B2".repeat(6) },
  {
    name: "google-api-key",
    key: "AIza" + "Sy-_a1".repeat(6) + "b",
    miss: "AIza" + "Sy-_a1".repeat(5),
  },
  { name: "npm-token", key: "npm_" + "aB3d".repeat(9), miss: "npm_" + "aB3d".repeat(9) + "e" },
  {
    name: "private-key",
    key: "-----BEGIN OPENSSH PRIVATE KEY-----",
    miss: "-----BEGIN PUBLIC KEY-----",
  },
  {
    name: "jwt",
    key: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    miss: "eyJhbGci.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
  },
];

describe("credential shapes", () => {
  test("each shape is found in text, and its near miss is not", () => {
    for (const { name, key, miss } of SHAPES) {
      assert.equal(scanner.scan(`x ${key} y`, none)?.name, name, key);
      assert.equal(scanner.scan(`x ${miss} y`, none), undefined, miss);
    }
  });

  test("shapes in their other spellings: upper-case AWS names, sk_live_", () => {
    const aws = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    assert.equal(scanner.scan(aws, none)?.name, "aws-secret-key");
    assert.equal(scanner.scan("sk_live_" + "a1B2".repeat(6), none)?.name, "stripe-key");
  });

  test("a key run on after a placeholder is still found; the placeholder alone is fine", () => {
    const token = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    const placeholder = "ghp_9876543210zyxwvutsrqZYXWVUTSRQ987654";
    const s = new SecretScanner([], [{ name: "GH", value: placeholder }]);
    assert.equal(s.scan(`Bearer ${placeholder}`, new Set(["GH"])), undefined);
    assert.equal(s.scan(`${placeholder}${token}`, new Set(["GH"]))?.name, "github-token");
  });

  // A timing bound here only guards against super-linear blowup: it is many times what a linear
  // scan takes, and far below what the old backtracking patterns took (seconds on 64 KiB).
  const ADVERSARIAL: Record<string, (n: number) => string> = {
    "eyJ repeated": (n) => "eyJ".repeat(n / 3),
    "eyJ run, dot, eyJ repeated": (n) => "eyJ" + "a".repeat(n / 2) + "." + "eyJ".repeat(n / 6),
    "sk- and letters": (n) => "sk-" + "a".repeat(n),
    "sk- repeated": (n) => "sk-".repeat(n / 3),
    "sk-proj- repeated": (n) => "sk-proj-".repeat(n / 8),
    "sk-ant-api03 repeated": (n) => "sk-ant-api03".repeat(n / 12),
    "sk-ant-api0 and letters": (n) => "sk-ant-api0" + "a".repeat(n),
    "ghp_ repeated": (n) => "ghp_".repeat(n / 4),
    "github_pat_ and short runs": (n) => "github_pat_abc.".repeat(n / 15),
    "AKIA repeated": (n) => "AKIA".repeat(n / 4),
    "AKIA and capitals": (n) => "AKIA" + "A".repeat(n),
    "aws_secret_key= and letters": (n) => "aws_secret_key=" + "A".repeat(n),
    "aws_secret_key and spaces": (n) => "aws_secret_key" + " ".repeat(n) + "x",
    "aws_secret_key= repeated": (n) => "aws_secret_key= ".repeat(n / 16),
    "-----BEGIN repeated": (n) => "-----BEGIN ".repeat(n / 11),
    "-----BEGIN and words": (n) => "-----BEGIN " + "A ".repeat(n / 2),
    "-----BEGIN and one word": (n) => "-----BEGIN " + "A".repeat(n),
    "xox repeated": (n) => "xox".repeat(n / 3),
    "slack webhook and capitals": (n) => "hooks.slack.com/services/T" + "A".repeat(n),
    "slack webhook, B and capitals": (n) => "hooks.slack.com/services/TA/B" + "A".repeat(n),
    "slack webhook repeated": (n) => "hooks.slack.com/services/T".repeat(n / 26),
    "AIza repeated": (n) => "AIza".repeat(n / 4),
    "npm_ repeated": (n) => "npm_".repeat(n / 4),
    "escaped eyJ repeated": (n) => "\\u0065\\u0079\\u004a".repeat(n / 18),
    "percent-encoded sk- repeated": (n) => "%73%6B%2D".repeat(n / 9),
    "one byte repeated": (n) => "s".repeat(n),
  };

  for (const [size, bound] of [
    [64 * 1024, 200],
    [1024 * 1024, 2000],
  ] as const) {
    test(`every pattern is linear: ${size / 1024} KiB of near matches scans in under ${bound} ms`, () => {
      for (const [what, make] of Object.entries(ADVERSARIAL)) {
        const text = make(size).slice(0, size);
        const started = performance.now();
        scanner.scan(text, none);
        const took = performance.now() - started;
        assert.ok(took < bound, `${what}: ${took.toFixed(0)} ms`);
      }
    });
  }

  test("a key after a near-match run is still found", () => {
    for (const [what, make] of Object.entries(ADVERSARIAL)) {
      const text = make(64 * 1024);
      if (scanner.scan(text, none)) continue; // a near match that is a match after all
      for (const { name, key } of SHAPES)
        assert.equal(scanner.scan(`${text} ${key} `, none)?.name, name, `${what}, then ${name}`);
    }
  });
});

describe("the scan budget", () => {
  test("a stream over its budget is refused, and stays refused", () => {
    let now = 0;
    const s = new SecretScanner([], [], {
      clock: () => (now += 300),
      budget: { baseMs: 1000, perMiBMs: 100 },
    });
    // Each window's scan reads the clock twice: 300 ms a window.
    const scan = s.stream(none);
    const chunk = Buffer.alloc(64 * 1024, "a");
    assert.equal(scan.push(chunk).finding, undefined);
    assert.equal(scan.push(chunk).finding, undefined);
    assert.equal(scan.push(chunk).finding, undefined);
    const refused = scan.push(chunk).finding;
    assert.equal(refused?.kind, "budget");
    assert.equal(refused?.name, "scan-budget");
    assert.equal(scan.push(Buffer.from("more")).finding?.kind, "budget");
    assert.equal(scan.end().length, 0, "nothing held back is released");
  });

  test("a large chunk is scanned in windows, so the budget is checked within it", () => {
    let now = 0;
    const s = new SecretScanner([], [], {
      clock: () => (now += 400),
      budget: { baseMs: 1000, perMiBMs: 100 },
    });
    const r = s.stream(none).push(Buffer.alloc(1024 * 1024, "a"));
    assert.equal(r.finding?.kind, "budget");
    assert.equal(r.forward.length, 0);
  });

  test("a stream's own budget overrides the scanner's", () => {
    const s = new SecretScanner([], []);
    const r = s.stream(none, { baseMs: 0, perMiBMs: 0 }).push(Buffer.alloc(64 * 1024, "a"));
    assert.equal(r.finding?.kind, "budget");
  });

  test("100 MB of ordinary JSON in 64 KiB chunks stays within the default budget", () => {
    const line = JSON.stringify({ path: "src/a.ts", text: 'const x = "caf\u00e9";\n// 50%\n' });
    const chunk = Buffer.from(
      line.repeat(Math.ceil((64 * 1024) / line.length)).slice(0, 64 * 1024),
    );
    const scan = scanner.stream(allowed);
    let forwarded = 0;
    let sent = 0;
    for (; sent < 100 * 1024 * 1024; sent += chunk.length) {
      const r = scan.push(chunk);
      assert.equal(r.finding, undefined);
      forwarded += r.forward.length;
    }
    forwarded += scan.end().length;
    assert.equal(forwarded, sent);
  });

  test("1 MiB of each near match, streamed, stays within the default budget", () => {
    for (const make of [(n: number) => "eyJ".repeat(n / 3), (n: number) => "sk-".repeat(n / 3)]) {
      const scan = scanner.stream(none);
      const body = Buffer.from(make(1024 * 1024));
      for (let at = 0; at < body.length; at += 16 * 1024)
        assert.notEqual(scan.push(body.subarray(at, at + 16 * 1024)).finding?.kind, "budget");
    }
  });
});

describe("escaped and encoded secrets", () => {
  const cases: Record<string, string> = {
    "JSON-escaped": jsonEscape(SECRET),
    "JSON-escaped, upper-case hex": jsonEscape(SECRET, true),
    "partly JSON-escaped": jsonEscape(SECRET.slice(0, 5)) + SECRET.slice(5),
    "with \\/ escapes": SECRET.replaceAll("/", "\\/"),
    "percent-encoded": percent(SECRET),
    "percent-encoded, upper-case": percent(SECRET, true),
    "percent-encoded, mixed case": percent(SECRET).replace(
      /%(..)/g,
      (_, h: string, i: number) => "%" + (i % 2 ? h.toUpperCase() : h),
    ),
    "partly percent-encoded": SECRET.slice(0, 4) + percent(SECRET.slice(4, 9)) + SECRET.slice(9),
    "escapes of both kinds": jsonEscape(SECRET.slice(0, 3)) + percent(SECRET.slice(3)),
  };

  test("a held secret is found however it is escaped", () => {
    for (const [what, form] of Object.entries(cases))
      assert.equal(scanner.scan(`{"q":"${form}"}`, none)?.kind, "held-secret", what);
  });

  test("ordinary escaped text, and a near miss escaped, are fine", () => {
    const text = '{"a":"caf\\u00e9 \\/ 100%25 done \\ud83d\\ude00","b":"%E2%82%AC%zz\\x"}';
    assert.equal(scanner.scan(text, none), undefined);
    const near = SECRET.slice(0, -1) + "X";
    assert.equal(scanner.scan(jsonEscape(near), none), undefined);
    assert.equal(scanner.scan(percent(near), none), undefined);
  });

  test("a placeholder escaped is allowed on its route and refused elsewhere", () => {
    for (const form of [jsonEscape(PLACEHOLDER), percent(PLACEHOLDER, true)]) {
      assert.equal(scanner.scan(form, allowed), undefined);
      assert.equal(scanner.scan(form, none)?.kind, "placeholder");
    }
    assert.equal(scanner.scan(jsonEscape(OTHER), allowed)?.kind, "placeholder");
  });

  test("a credential shape is found escaped", () => {
    const key = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    assert.equal(scanner.scan(jsonEscape(key), none)?.name, "github-token");
    assert.equal(scanner.scan(percent(key), none)?.name, "github-token");
  });

  test("an escaped secret split across chunks is found before any of it is forwarded", () => {
    const escaped = jsonEscape(SECRET);
    for (const cut of [1, 3, 7, escaped.length - 2]) {
      const scan = scanner.stream(none);
      const body = Buffer.from("a".repeat(5000) + escaped + "b".repeat(100));
      const first = scan.push(body.subarray(0, 5000 + cut));
      assert.equal(first.finding, undefined);
      assert.ok(first.forward.length <= 5000, `cut at ${cut}: nothing escaped is forwarded`);
      assert.equal(scan.push(body.subarray(5000 + cut)).finding?.kind, "held-secret");
    }
  });
});

describe("request heads", () => {
  const head = (...pairs: [string, string][]) => pairs.map(([name, value]) => ({ name, value }));

  test("a secret split across two headers is found; ordinary headers are fine", () => {
    const split = head(["X-A", SECRET.slice(0, 12)], ["X-B", SECRET.slice(12)]);
    assert.equal(scanner.scanHead(split, none, "/")?.kind, "held-secret");
    const plain = head(["Accept", "*/*"], ["User-Agent", "curl/8.5.0"], ["X-Id", "0123456789"]);
    assert.equal(scanner.scanHead(plain, none, "/v1/x?q=1"), undefined);
  });

  test("header names are scanned", () => {
    assert.equal(scanner.scanHead(head([`X-${NAMED}`, "1"]), none)?.name, "NAMED");
    const key = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    assert.equal(scanner.scanHead(head([key, "1"]), none)?.name, "github-token");
    assert.equal(scanner.scanHead(head(["X-Request-Id", "1"]), none), undefined);
  });

  test("the target is scanned decoded, with + as a space", () => {
    const target = "/x?q=" + "pass+phr" + percent("as") + "e+0123456789";
    assert.equal(scanner.scanHead([], none, target)?.name, "SPACED");
    assert.equal(scanner.scanHead([], none, "/x?q=pass+phrase+012345678X"), undefined);
    assert.equal(scanner.scanHead([], none, `/x?k=${percent(SECRET, true)}`)?.name, "TOKEN");
  });

  test("the allowed placeholder is fine in every view; another route's is refused", () => {
    const bearer = head(["Authorization", `Bearer ${PLACEHOLDER}`]);
    assert.equal(scanner.scanHead(bearer, allowed, `/?t=${percent(PLACEHOLDER)}`), undefined);
    assert.equal(scanner.scanHead(bearer, none)?.kind, "placeholder");
    const split = head(["X-A", OTHER.slice(0, 9)], ["X-B", OTHER.slice(9)]);
    assert.equal(scanner.scanHead(split, allowed)?.kind, "placeholder");
  });
});

describe("the redactor", () => {
  const real = Buffer.from("sk-ant-api03-AbCdEf0123456789_xyzXYZ-0123456789abcdefABCDEF");
  const fake = Buffer.from("sk-ant-api03-QwErTy9876543210_qwePOI-9876543210zyxwvuZYXWVU");
  const pairs = [{ real, placeholder: fake }];
  const forms = (b: Buffer) => [
    b.toString("latin1"),
    b.toString("hex"),
    b.toString("hex").toUpperCase(),
    encodeURIComponent(b.toString()),
    jsonEscape(b.toString()),
    jsonEscape(b.toString(), true),
  ];

  test("every form of a token becomes the same form of its placeholder, at every split", () => {
    const fakes = forms(fake);
    forms(real).forEach((form, i) => {
      const text = `{"echo":"${form}"}`;
      const want = `{"echo":"${fakes[i] ?? ""}"}`;
      assert.equal(Redactor.text(text, pairs), want, `text, form ${i}`);
      for (let cut = 0; cut <= text.length; cut++) {
        const r = new Redactor(pairs);
        const out = Buffer.concat([
          r.push(Buffer.from(text.slice(0, cut), "latin1")),
          r.push(Buffer.from(text.slice(cut), "latin1")),
          r.end(),
        ]).toString("latin1");
        assert.equal(out, want, `form ${i}, cut at ${cut}`);
      }
    });
  });

  test("a form is found wherever a chunk's probes fall, among other escapes", () => {
    const fakes = forms(fake);
    forms(real).forEach((form, i) => {
      for (let pre = 0; pre < 40; pre++) {
        const text = "\\u00e9".repeat(pre % 7) + "y".repeat(pre) + form + "\\u00e8";
        const want = text.replace(form, fakes[i] ?? "");
        const r = new Redactor(pairs);
        const out = Buffer.concat([r.push(Buffer.from(text, "latin1")), r.end()]);
        assert.equal(out.toString("latin1"), want, `form ${i}, ${pre} bytes in`);
      }
    });
  });

  test("base64 and base64url at every alignment: the token's bytes are gone, same length", () => {
    for (const encoding of ["base64", "base64url"] as const)
      for (const pre of ["", "a", "ab"]) {
        const encoded = Buffer.from(pre + real.toString() + " tail").toString(encoding);
        const out = Redactor.text(`x${encoded}y`, pairs);
        assert.equal(out.length, encoded.length + 2);
        const decoded = Buffer.from(out.slice(1, -1), encoding).toString("latin1");
        assert.ok(!decoded.includes(real.subarray(1, -1).toString()), `${encoding}+${pre.length}`);
        assert.ok(decoded.includes(fake.subarray(1, -1).toString()), `${encoding}+${pre.length}`);
      }
  });

  test("a token that ends what was base64-encoded comes back as the whole placeholder", () => {
    for (const encoding of ["base64", "base64url"] as const)
      for (const pre of ["", "user:", "ab"]) {
        const encoded = Buffer.from(pre + real.toString()).toString(encoding);
        const out = Redactor.text(`Basic ${encoded}\n`, pairs);
        const decoded = Buffer.from(out.slice(6, -1), encoding).toString("latin1");
        assert.equal(decoded, pre + fake.toString(), `${encoding}+${pre.length}`);
      }
  });

  test("ordinary data passes through as is, in the same buffer", () => {
    const r = new Redactor(pairs);
    const plain = Buffer.from('{"a":"caf\\u00e9 0123456789 abcdef ABCDEF"}x');
    assert.equal(r.push(plain), plain);
    assert.equal(r.end().length, 0);
  });
});
