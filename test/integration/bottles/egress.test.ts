/**
 * The egress chain end to end: a real bottle whose agent runs curl and a Node client through the
 * bundle's proxy to a fake HTTPS upstream container standing in for api.anthropic.com (mapped
 * with extra_hosts, reached through egress.network, trusted through trust_ca), which records what
 * it received. Nothing here talks to a real internet host.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { copyFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { AuditRecord } from "../../../src/shared/egress-config.js";
import { placeholderFor } from "../../../src/shared/placeholders.js";
import { TestBottles } from "../../helpers/bottles.js";
import { upstreamCerts, upstreamLog } from "../../helpers/fake-upstream.js";

const FIXTURES = join(import.meta.dirname, "../../fixtures");
const TOKEN_ENV = "BB_TEST_ANTHROPIC_KEY";
const TOKEN = `sk-ant-api03-${randomBytes(45).toString("base64url")}`;
const NAMES = ["api.anthropic.com", "other.example.test", "files.example.test", "new.example.test"];

const t = new TestBottles();
const agent = t.agent("egress");

interface Seen {
  method: string;
  url: string;
  host: string;
  headers: Record<string, string>;
  body: string;
}

/** What the fake upstream received, in order. */
async function received(container: string): Promise<Seen[]> {
  return (await upstreamLog(container)).filter((e) => e.event === "request") as Seen[];
}

describe(
  "egress end to end: agent -> bundle proxy -> fake upstream",
  { timeout: 15 * 60_000 },
  () => {
    let slug = "";
    let upstream = "";
    let upstreamIp = "";
    let certs = "";
    let placeholder = "";
    let net = "";

    const routes = (extra: unknown[] = []) => [
      {
        host: "api.anthropic.com",
        paths: ["/v1/"],
        auth: { header: "x-api-key", token_env: TOKEN_ENV },
      },
      { host: "files.example.test", methods: ["GET", "HEAD"] },
      { host: "pinned.example.test", tls_passthrough: true },
      ...extra,
    ];

    const writeManifest = async (extraRoutes: unknown[] = []) => {
      const bottle = {
        egress: {
          routes: routes(extraRoutes),
          extra_hosts: Object.fromEntries(
            [...NAMES, "pinned.example.test"].map((n) => [n, upstreamIp]),
          ),
          trust_ca: join(certs, "ca", "ca.crt"),
          network: net,
        },
      };
      const manifest = TestBottles.shellManifest([agent], bottle);
      await writeFile(t.manifest, JSON.stringify(manifest, null, 2));
    };

    /** curl inside the agent; prints "<code> <refusal tag>" then the body. */
    const curl = async (args: string): Promise<{ code: string; tag: string; body: string }> => {
      const r = await t.sh(
        slug,
        `rm -f /tmp/body /tmp/head; curl -sS -o /tmp/body -D /tmp/head -w '%{http_code} %{http_connect}' ${args}; echo; echo "$(grep -i '^x-bot-bottle-refusal' /tmp/head | tail -1 | tr -d '\\r')"; cat /tmp/body 2>/dev/null; true`,
      );
      const [status = "", tagLine = "", ...rest] = r.stdout.split("\n");
      const [code = "", connect = ""] = status.split(" ");
      return {
        // A refused CONNECT has no HTTP status of its own: report the proxy's answer instead.
        code: code === "000" && connect !== "000" && connect !== "200" ? connect : code,
        tag: tagLine.replace(/^x-bot-bottle-refusal:\s*/i, ""),
        body: rest.join("\n"),
      };
    };

    before(async () => {
      await t.setup(TestBottles.shellManifest([agent]));
      const built = await t.cli(["images", "build", "shell", "bundle"], 20 * 60_000);
      assert.equal(built.code, 0, built.stderr);
      certs = join(t.dir, "certs");
      await upstreamCerts(certs, [...NAMES, "pinned.example.test"]);
      net = await t.network([]);
      upstream = await t.fakeUpstream(certs, net);
      upstreamIp = await t.ip(upstream, net);
      await writeManifest();
      await copyFile(join(FIXTURES, "proxy-client.mjs"), join(t.workspace, "proxy-client.mjs"));
      await copyFile(join(certs, "ca", "ca.crt"), join(t.workspace, "upstream-ca.crt"));
      t.env[TOKEN_ENV] = TOKEN;
      slug = await t.start(agent);
      placeholder = placeholderFor(TOKEN, TOKEN_ENV, slug);
    });
    after(() => (process.env["KEEP"] ? undefined : t.teardown()));

    test("the upstream sees the real token; the agent's env and files hold only the placeholder", async () => {
      const env = await t.sh(slug, `printenv ${TOKEN_ENV}`);
      assert.equal(env.stdout.trim(), placeholder);
      assert.notEqual(placeholder, TOKEN);

      const viaCurl = await curl(
        `https://api.anthropic.com/v1/messages -H "x-api-key: $${TOKEN_ENV}" -H 'content-type: application/json' -d '{"model":"m"}'`,
      );
      assert.equal(viaCurl.code, "200", viaCurl.body);
      // The upstream echoes the headers it got: the agent must see its placeholder, not the token.
      assert.ok(viaCurl.body.includes(placeholder) && !viaCurl.body.includes(TOKEN), viaCurl.body);

      const viaNode = await t.sh(
        slug,
        `node proxy-client.mjs https://api.anthropic.com/v1/models --header "x-api-key: $${TOKEN_ENV}"`,
      );
      assert.match(viaNode.stdout, /^200 /, viaNode.stderr);

      const seen = await received(upstream);
      const calls = seen.filter((s) => s.url.startsWith("/v1/"));
      assert.equal(calls.length, 2);
      for (const call of calls) assert.equal(call.headers["x-api-key"], TOKEN);

      // Nowhere in the agent: environment of every process, argv, config and home files.
      // The token's pieces are joined only inside grep's pattern file, never on an argv.
      const [a, b] = [TOKEN.slice(13, 26), TOKEN.slice(26, 40)];
      const search = await t.cli([
        "exec",
        slug,
        "--",
        "bash",
        "-c",
        `pat() { printf '%s%s\\n' ${a} ${b}; }
       n=$(cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n' | grep -cF -f <(pat))
       f=$(grep -rsFl -f <(pat) /etc /home /tmp /usr/local /opt /var 2>/dev/null | head -5)
       echo "$n|$f"`,
      ]);
      assert.equal(
        search.stdout.trim(),
        "0|",
        `the token was found in the agent: ${search.stdout}`,
      );
      const audit = await readFile(
        join(t.dir, "state", "bot-bottle", slug, "audit", "egress.jsonl"),
        "utf8",
      );
      assert.ok(!audit.includes(TOKEN.slice(13)), "the audit log never holds the token");
    });

    test("refusals, each next to its allowed twin", async () => {
      const cases: [string, string, string][] = [
        // [allowed twin, attack, expected tag]
        ["https://api.anthropic.com/v1/x", "https://other.example.test/v1/x", "not-in-routes"],
        ["https://api.anthropic.com/v1/x", "https://api.anthropic.com/admin", "path-not-allowed"],
        [
          "https://files.example.test/a",
          "-X POST -d x https://files.example.test/a",
          "method-not-allowed",
        ],
        ["https://files.example.test/a", `https://${upstreamIp}/a`, "ip-literal"],
        ["https://files.example.test/a", "https://files.example.test:8443/a", "port-not-allowed"],
        [
          "https://files.example.test/a",
          `https://files.example.test/a -H "x-api-key: $${TOKEN_ENV}"`,
          "placeholder-wrong-host",
        ],
        [
          "https://files.example.test/a",
          "https://files.example.test/a -H 'Host: other.example.test'",
          "host-mismatch",
        ],
      ];
      for (const [twin, attack, tag] of cases) {
        const ok = await curl(twin);
        assert.equal(ok.code, "200", `${twin}: ${ok.body}`);
        const refused = await curl(attack);
        assert.equal(refused.code, "403", `${attack}: ${refused.code} ${refused.body}`);
        if (refused.tag) assert.equal(refused.tag, tag, attack);
        else assert.match(refused.body, /bot-bottle: /, attack);
      }
      const records = await auditRecords();
      for (const [, , tag] of cases)
        assert.ok(
          records.some((r) => r.decision === "refuse" && r.tag === tag),
          `audited: ${tag}`,
        );
      const seen = await received(upstream);
      assert.ok(!seen.some((s) => s.url === "/admin" || (s.method === "POST" && s.url === "/a")));
      assert.ok(!seen.some((s) => s.host?.startsWith("other.example.test")));
    });

    test("a secret in a query string, a header, a JSON body or a base64 body is refused", async () => {
      const clean = await curl(`https://api.anthropic.com/v1/m?q=hello -d '{"q":"hello"}'`);
      assert.equal(clean.code, "200");
      const before = (await received(upstream)).length;
      const aws = "AKIA" + "IOSFODNN7EXAMPLE";
      const gh =
        "ghp_" +
        randomBytes(27)
          .toString("base64")
          .replace(/[^A-Za-z0-9]/g, "a")
          .slice(0, 36);
      const b64 = Buffer.from(`config=${TOKEN}\n`).toString("base64");
      for (const attack of [
        `"https://api.anthropic.com/v1/m?key=${aws}"`,
        `https://api.anthropic.com/v1/m -H "x-debug: ${gh}"`,
        `https://api.anthropic.com/v1/m -H 'content-type: application/json' -d '{"note":"${gh}"}'`,
        `https://api.anthropic.com/v1/m -d '${b64}'`,
      ]) {
        const r = await curl(attack);
        assert.equal(r.code, "403", attack);
        assert.equal(r.tag, "secret-detected", attack);
        assert.ok(!r.body.includes(TOKEN) && !r.body.includes(gh), "the refusal does not echo it");
      }
      assert.equal((await received(upstream)).length, before, "none of them reached the upstream");
    });

    test("a tls_passthrough route is tunnelled untouched: the agent sees the upstream's own certificate", async () => {
      const r = await curl("--cacert upstream-ca.crt https://pinned.example.test/p");
      assert.equal(r.code, "200", r.body);
      const bottleCa = await curl("https://pinned.example.test/p");
      assert.notEqual(bottleCa.code, "200", "the bottle CA did not sign it: it was not decrypted");
    });

    test("logs --egress shows every decision, for people and as JSON", async () => {
      const people = await t.cli(["logs", slug, "--egress"]);
      assert.equal(people.code, 0, people.stderr);
      assert.match(people.stdout, /allow\s+POST\s+api\.anthropic\.com\/v1\/messages 200/);
      assert.match(
        people.stdout,
        /refuse\s+CONNECT\s+other\.example\.test.*\[not-in-routes\] bot-bottle: host "other\.example\.test" is not in this bottle's routes/,
      );
      const json = await t.cli(["logs", slug, "--egress", "--json"]);
      const records = json.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as AuditRecord);
      assert.ok(records.length >= 10);
      assert.ok(records.every((r) => typeof r.ms === "number" && r.time && r.decision));
      assert.ok(!json.stdout.includes(TOKEN));
    });

    test("egress apply adds a route live; a connection held open across the reload stays up", async () => {
      const before = await curl("https://new.example.test/n");
      assert.equal(before.code, "403");
      const ready = join(t.workspace, "first-done");
      const go = join(t.workspace, "go");
      const held = t.sh(
        slug,
        `node proxy-client.mjs https://api.anthropic.com/v1/held --header "x-api-key: $${TOKEN_ENV}" --ready first-done --hold go`,
      );
      const deadline = Date.now() + 30_000;
      while (
        !(await readFile(ready).then(
          () => true,
          () => false,
        ))
      ) {
        assert.ok(Date.now() < deadline, "the held client never made its first request");
        await new Promise((r) => setTimeout(r, 50));
      }

      // An invalid route is refused before anything changes.
      const good = JSON.parse(await readFile(t.manifest, "utf8")) as Record<string, unknown>;
      await writeManifest([{ host: "https://bad.example.test/" }]);
      const bad = await t.cli(["egress", "apply", slug]);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /routes\[3\]\.host/);
      await writeFile(t.manifest, JSON.stringify(good, null, 2));
      assert.equal((await curl("https://new.example.test/n")).code, "403");

      await writeManifest([{ host: "new.example.test" }]);
      // A new host widens what the bottle may reach: a script says so with --yes.
      const applied = await t.cli(["egress", "apply", slug, "--yes"]);
      assert.equal(applied.code, 0, applied.stderr);
      assert.match(applied.stderr, /routes generation 2 loaded \(added new\.example\.test\)/);
      assert.equal((await curl("https://new.example.test/n")).code, "200");

      await writeFile(go, "");
      const out = await held;
      assert.equal(out.code, 0, out.stderr);
      const lines = out.stdout.trim().split("\n");
      assert.match(lines[0] ?? "", /^200 /);
      assert.match(lines[1] ?? "", /^same-connection 200 /, out.stdout);
      const logs = await t.cli(["logs", slug, "--json"]);
      assert.match(logs.stdout, /"event":"reload".*"generation":2/);
      assert.doesNotMatch(logs.stdout, /"component":"init","event":"restart"/);
    });

    async function auditRecords(): Promise<AuditRecord[]> {
      const r = await t.cli(["logs", slug, "--egress", "--json"]);
      return r.stdout
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as AuditRecord);
    }
  },
);
