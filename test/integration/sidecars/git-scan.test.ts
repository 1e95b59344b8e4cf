/**
 * The git gate's push scan (scanPush), in process, against real repositories made here with the
 * host's git and the gitleaks the bundle carries. A push's quarantine is played by objects no ref
 * reaches: each test's bare "mirror" has refs for the published history only, and the pushed
 * commits, trees, blobs and tags are written with plumbing and referenced by nothing, exactly
 * what `rev-list --objects <tips> --not --all` lists in the real hook.
 *
 * Three kinds of secret, so each place is shown read by each scanner: an AWS key id (a shape the
 * bundle's own scanner knows: it finds it before gitleaks runs), a Shopify token (a rule only
 * gitleaks has), and a value the bundle holds (found by its variable's name). Every refusal comes
 * after its clean twin, the same push without the secret, passes.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { run } from "../../../src/exec/run.js";
import type { GitRefUpdate } from "../../../src/shared/git-gate-config.js";
import type { HeldSecret } from "../../../src/sidecars/dlp.js";
import type { ScanResult } from "../../../src/sidecars/git-gate/scan.js";
import { gitleaksBinary } from "../../helpers/gitleaks.js";

// The gate's git runs with its own home (gate.ts reads it once, at import).
const root = await mkdtemp(join(tmpdir(), "bot-bottle-git-scan-"));
process.env["BOT_BOTTLE_GIT_GATE_HOME"] = join(root, "gate-home");
await mkdir(join(root, "gate-home"));
const { scanPush } = await import("../../../src/sidecars/git-gate/scan.js");
const { gitEnv } = await import("../../../src/sidecars/git-gate/gate.js");

const ZERO = "0".repeat(40);
const hex = (bytes: number) => randomBytes(bytes).toString("hex");

/** A secret of one kind: how to make a fresh one, and the rule a finding of it names. */
interface Kind {
  label: string;
  make: () => string;
  rule: string;
  /** Whether the bundle holds the secret (else it holds another value). */
  held?: boolean;
}
const HELD_NAME = "BB_TEST_HELD_TOKEN";
const KINDS: Kind[] = [
  {
    label: "an AWS key id, a shape the bundle's scanner knows",
    make: () => `AKIA${hex(8).toUpperCase()}`,
    rule: "aws-access-key-id",
  },
  {
    label: "a Shopify token, a rule only gitleaks has",
    make: () => `shpat_${hex(16)}`,
    rule: "shopify-access-token",
  },
  {
    label: "a value the bundle holds",
    make: () => `heldtok${hex(12)}`,
    rule: HELD_NAME,
    held: true,
  },
];

/** The test's own git: no system or user config, a fixed identity. */
const OWN_ENV: NodeJS.ProcessEnv = {
  PATH: process.env["PATH"],
  HOME: root,
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_AUTHOR_NAME: "Dev",
  GIT_AUTHOR_EMAIL: "dev@example.test",
  GIT_COMMITTER_NAME: "Dev",
  GIT_COMMITTER_EMAIL: "dev@example.test",
  GIT_AUTHOR_DATE: "1700000000 +0000",
  GIT_COMMITTER_DATE: "1700000000 +0000",
};

type Files = Record<string, string | Buffer>;

/**
 * A bare repository as the gate's mirror: `main` is the published history; blob(), tree(),
 * commit() and tag() write objects that no ref reaches (the push's quarantine).
 */
class Mirror {
  private constructor(readonly dir: string) {}

  /** A mirror whose main holds one published commit of `files`. */
  static async create(files: Files = { "README.md": "# app\n" }): Promise<Mirror> {
    const m = new Mirror(join(root, `mirror-${hex(4)}.git`));
    await run("git", ["init", "--quiet", "--bare", "--initial-branch=main", m.dir], {
      env: OWN_ENV,
    });
    const first = await m.commit({ files, message: "initial commit" });
    await m.git(["update-ref", "refs/heads/main", first]);
    return m;
  }

  async git(args: string[], input?: string | Buffer, env: NodeJS.ProcessEnv = {}) {
    const r = await run("git", ["-C", this.dir, ...args], {
      env: { ...OWN_ENV, ...env },
      ...(input === undefined ? {} : { input }),
    });
    return r.stdout.trim();
  }

  /** The published main. */
  head(): Promise<string> {
    return this.git(["rev-parse", "refs/heads/main"]);
  }

  blob(content: string | Buffer): Promise<string> {
    return this.git(["hash-object", "-w", "--stdin"], content);
  }

  /** The tree of `base` (a commit; none: empty) with `files` written over it and `remove` gone. */
  async tree(files: Files, base?: string, remove: string[] = []): Promise<string> {
    const index = { GIT_INDEX_FILE: join(root, `index-${hex(4)}`) };
    await this.git(base ? ["read-tree", base] : ["read-tree", "--empty"], undefined, index);
    for (const [path, content] of Object.entries(files)) {
      const id = await this.blob(content);
      await this.git(["update-index", "--add", "--cacheinfo", `100644,${id},${path}`], "", index);
    }
    // Mode 0 removes an entry (--force-remove would want a work tree).
    if (remove.length > 0)
      await this.git(
        ["update-index", "--index-info"],
        remove.map((path) => `0 ${"0".repeat(40)}\t${path}\n`).join(""),
        index,
      );
    const tree = await this.git(["write-tree"], undefined, index);
    await rm(index.GIT_INDEX_FILE, { force: true });
    return tree;
  }

  /**
   * A commit over `parent` (default: none, a root) of `files` written over the parent's tree
   * (or exactly `tree`), minus `remove`.
   */
  async commit(o: {
    parent?: string;
    files?: Files;
    remove?: string[];
    tree?: string;
    message?: string;
    author?: string;
  }): Promise<string> {
    const tree = o.tree ?? (await this.tree(o.files ?? {}, o.parent, o.remove));
    return this.git(
      ["commit-tree", tree, ...(o.parent ? ["-p", o.parent] : []), "-F", "-"],
      (o.message ?? "change") + "\n",
      o.author ? { GIT_AUTHOR_NAME: o.author } : {},
    );
  }

  /** An annotated tag object named `name` on `object` (a commit), with `message`. */
  tag(object: string, name: string, message: string): Promise<string> {
    return this.git(
      ["mktag"],
      `object ${object}\ntype commit\ntag ${name}\ntagger Dev <dev@example.test> 1700000000 +0000\n\n${message}\n`,
    );
  }
}

/** main moved from the published head to `tip`. */
async function toMain(m: Mirror, tip: string): Promise<GitRefUpdate[]> {
  return [{ ref: "refs/heads/main", old: await m.head(), new: tip }];
}

describe("the git gate's push scan, over real repositories", { timeout: 30 * 60_000 }, () => {
  let gitleaks = "";
  const held = (value: string): HeldSecret[] => [{ name: HELD_NAME, value }];

  /** scanPush as the hook calls it, with generous limits unless the test sets them. */
  const scan = (
    m: Mirror,
    updates: GitRefUpdate[],
    o: {
      secrets?: HeldSecret[];
      maxObjects?: number;
      maxScanBytes?: number;
      timeoutMs?: number;
      gitleaks?: string;
    } = {},
  ): Promise<ScanResult> =>
    scanPush({
      mirror: m.dir,
      updates,
      secrets: o.secrets ?? [],
      maxObjects: o.maxObjects ?? 100_000,
      maxScanBytes: o.maxScanBytes ?? 1024 * 1024 * 1024,
      timeoutMs: o.timeoutMs ?? 120_000,
      env: gitEnv(),
      gitleaks: o.gitleaks ?? gitleaks,
    });

  /** Asserts a refusal for a secret and returns its finding; the value is nowhere in the result. */
  const refused = (r: ScanResult, secret: string) => {
    assert.equal(r.ok, false, `refused: ${JSON.stringify(r)}`);
    assert.ok(!r.ok && r.tag === "secret-detected", `a secret, not ${JSON.stringify(r)}`);
    assert.ok(!JSON.stringify(r).includes(secret), "the result never holds the value");
    return r.finding;
  };

  before(async () => {
    gitleaks = await gitleaksBinary();
  });

  after(() => rm(root, { recursive: true, force: true }));

  /**
   * Each place a push can carry text: `plant(text)` writes the push's objects with `text` in that
   * place and returns its ref updates; `where` is what the finding must say.
   */
  const places: {
    name: string;
    plant: (m: Mirror, text: string) => Promise<GitRefUpdate[]>;
    where: { file: RegExp; line: number };
    /** The commit the finding names: the first new one, or none. */
    commit: "first" | "none";
  }[] = [
    {
      name: "a file a later commit of the same push removes",
      plant: async (m, text) => {
        const added = await m.commit({
          parent: await m.head(),
          files: { "tmp.env": `# local settings\ntoken = ${text}\n` },
        });
        return toMain(m, await m.commit({ parent: added, remove: ["tmp.env"] }));
      },
      where: { file: /^tmp\.env$/, line: 2 },
      commit: "first",
    },
    {
      name: "a commit message only",
      plant: async (m, text) =>
        toMain(
          m,
          await m.commit({
            parent: await m.head(),
            files: { "notes.txt": "x\n" },
            message: `notes\n\n${text}`,
          }),
        ),
      // tree, parent, author, committer, blank, subject, blank, then the body.
      where: { file: /^commit [0-9a-f]{12} \(message and author\)$/, line: 8 },
      commit: "first",
    },
    {
      name: "an annotated tag's message only (on a published commit)",
      plant: async (m, text) => [
        {
          ref: "refs/tags/v1.0",
          old: ZERO,
          new: await m.tag(await m.head(), "v1.0", `release\n\n${text}`),
        },
      ],
      // object, type, tag, tagger, blank, subject, blank, then the body.
      where: { file: /^tag object [0-9a-f]{12}$/, line: 8 },
      commit: "none",
    },
    {
      name: "an author name only",
      plant: async (m, text) =>
        toMain(
          m,
          await m.commit({ parent: await m.head(), files: { "a.txt": "a\n" }, author: text }),
        ),
      where: { file: /^commit [0-9a-f]{12} \(message and author\)$/, line: 3 },
      commit: "first",
    },
    {
      name: "a ref name only",
      plant: async (m, text) => [
        {
          ref: `refs/heads/feature-${text}`,
          old: ZERO,
          new: await m.commit({ parent: await m.head(), files: { "f.txt": "f\n" } }),
        },
      ],
      where: { file: /^the pushed ref names$/, line: 1 },
      commit: "none",
    },
    {
      name: "a file with NUL bytes before the secret (binary to git)",
      plant: async (m, text) =>
        toMain(
          m,
          await m.commit({
            parent: await m.head(),
            files: {
              "blob.dat": Buffer.concat([
                Buffer.from([0, 1, 2, 0, 0xff, 0, 0x0a]),
                Buffer.from(`\0\0key\0=\0${text}\n`),
              ]),
            },
          }),
        ),
      where: { file: /^blob\.dat$/, line: 2 },
      commit: "first",
    },
  ];

  for (const place of places)
    for (const kind of KINDS)
      test(`a secret in ${place.name} is refused, naming where — ${kind.label}`, async () => {
        const clean = await Mirror.create();
        const twin = await scan(clean, await place.plant(clean, "nothing-secret-here"), {
          secrets: held(kind.make()),
        });
        assert.equal(twin.ok, true, `the clean twin passes: ${JSON.stringify(twin)}`);
        assert.ok(twin.objects > 0, "the twin's objects were read");

        const m = await Mirror.create();
        const secret = kind.make();
        const updates = await place.plant(m, secret);
        const secrets = held(kind.held ? secret : kind.make());
        const finding = refused(await scan(m, updates, { secrets }), secret);
        const where = place.where;
        assert.equal(finding.rule, kind.rule);
        assert.match(finding.file, where.file);
        assert.equal(finding.line, where.line, `the line of ${finding.file}`);
        if (place.commit === "none") assert.equal(finding.commit, undefined);
        else {
          // The first new commit: the one the secret came in with (its parent is published).
          const log = await m.git([
            "rev-list",
            "--reverse",
            ...updates.map((u) => u.new),
            "--not",
            "--all",
          ]);
          assert.equal(finding.commit, log.split("\n")[0]);
        }
      });

  /** A held value with characters URL encoding changes, in the forms an agent could hide it in. */
  const HELD_VALUE = () => `Vx9/q+Lm=${hex(6)}&k y`;
  const encoded: { name: string; encode: (v: string) => string }[] = [
    { name: "raw", encode: (v) => v },
    {
      name: "base64 at offset 1",
      encode: (v) => Buffer.concat([Buffer.from("x"), Buffer.from(v)]).toString("base64"),
    },
    {
      name: "base64url at offset 2",
      encode: (v) => Buffer.concat([Buffer.from("xy"), Buffer.from(v)]).toString("base64url"),
    },
    { name: "hex", encode: (v) => Buffer.from(v).toString("hex") },
    { name: "URL-encoded", encode: (v) => encodeURIComponent(v) },
  ];
  for (const e of encoded)
    test(`a held secret ${e.name} is refused, naming its variable and line, never the value`, async () => {
      const m = await Mirror.create();
      const value = HELD_VALUE();
      const push = async (text: string) =>
        toMain(
          m,
          await m.commit({
            parent: await m.head(),
            files: { "data/blob.txt": `first line\nsecond line\npayload=${text}\nlast\n` },
          }),
        );
      const twin = await scan(m, await push(e.encode(HELD_VALUE())), { secrets: held(value) });
      assert.equal(twin.ok, true, `another value's ${e.name} passes: ${JSON.stringify(twin)}`);

      const text = e.encode(value);
      if (e.name !== "raw") assert.ok(!text.includes(value), "the value is not there raw");
      const updates = await push(text);
      const r = await scan(m, updates, { secrets: held(value) });
      const finding = refused(r, value);
      assert.ok(!JSON.stringify(r).includes(text), "nor its encoding");
      assert.deepEqual(finding, {
        rule: HELD_NAME,
        file: "data/blob.txt",
        line: 3,
        commit: updates[0]?.new,
      });
    });

  test("the finding names the pushed path and the commit that brought the blob, not the tip", async () => {
    for (const kind of KINDS.slice(0, 2)) {
      const m = await Mirror.create();
      const secret = kind.make();
      const a = await m.commit({ parent: await m.head(), files: { "a.txt": "a\n" } });
      const b = await m.commit({
        parent: a,
        files: { "src/deep/config.py": `import os\n\nKEY = "${secret}"\n` },
      });
      const c = await m.commit({ parent: b, files: { "a.txt": "a\nb\n" } });
      const twin = await scan(m, await toMain(m, a));
      assert.equal(twin.ok, true, JSON.stringify(twin));
      const finding = refused(await scan(m, await toMain(m, c)), secret);
      assert.deepEqual(finding, {
        rule: kind.rule,
        file: "src/deep/config.py",
        line: 3,
        commit: b,
      });
    }
  });

  test("a new root commit (unrelated history on a new branch) is named as the one that brought it", async () => {
    const m = await Mirror.create();
    const secret = KINDS[0]?.make() ?? "";
    const orphan = await m.commit({ files: { "x/key.txt": `${secret}\n` }, message: "orphan" });
    const child = await m.commit({ parent: orphan, files: { "y.txt": "y\n" } });
    const twin = await scan(m, [
      {
        ref: "refs/heads/clean",
        old: ZERO,
        new: await m.commit({ files: { "x/key.txt": "none\n" } }),
      },
    ]);
    assert.equal(twin.ok, true, JSON.stringify(twin));
    const finding = refused(
      await scan(m, [{ ref: "refs/heads/other", old: ZERO, new: child }]),
      secret,
    );
    assert.deepEqual(finding, {
      rule: "aws-access-key-id",
      file: "x/key.txt",
      line: 1,
      commit: orphan,
    });
  });

  /**
   * What would hide a finding from gitleaks run over a checkout: each is pushed with a Shopify
   * token (a rule only gitleaks has, so gitleaks alone must find it). Each is first shown to hide
   * the token from gitleaks run naively over the pushed files, so the test proves the gate defuses
   * it rather than that it never worked.
   */
  const allowances: { name: string; files: (secret: string) => Files }[] = [
    {
      name: "`gitleaks:allow` on the secret's line",
      files: (s) => ({ "config.py": `TOKEN = "${s}"  # gitleaks:allow\n` }),
    },
    {
      name: "a pushed .gitleaks.toml allowlisting everything",
      files: (s) => ({
        ".gitleaks.toml":
          "[extend]\nuseDefault = true\n[allowlist]\ndescription = \"all\"\npaths = ['''.*''']\nregexes = ['''.*''']\n",
        "config.py": `TOKEN = "${s}"\n`,
      }),
    },
    {
      name: "a pushed .gitleaksignore naming the finding",
      files: (s) => ({
        ".gitleaksignore": [
          "config.py:shopify-access-token:1",
          // Guesses at the gate's own layout of the pushed files.
          ...[0, 1, 2, 3].flatMap((n) => [
            `pushed/b${n}/config.py:shopify-access-token:1`,
            `b${n}/config.py:shopify-access-token:1`,
          ]),
          "",
        ].join("\n"),
        "config.py": `TOKEN = "${s}"\n`,
      }),
    },
  ];
  for (const a of allowances)
    test(`${a.name} does not hide a secret`, async () => {
      const secret = `shpat_${hex(16)}`;
      // Naively, over a checkout of the pushed files, it does hide it.
      const checkout = join(root, `checkout-${hex(4)}`);
      for (const [path, content] of Object.entries(a.files(secret))) {
        await mkdir(dirname(join(checkout, path)), { recursive: true });
        await writeFile(join(checkout, path), content);
      }
      const naive = await run(
        gitleaks,
        ["detect", "--no-git", "--source", ".", "--no-banner", "--exit-code", "3"],
        { cwd: checkout, env: { PATH: process.env["PATH"], HOME: checkout }, okExitCodes: [0, 3] },
      );
      assert.equal(naive.exitCode, 0, "gitleaks run naively finds nothing");

      const m = await Mirror.create();
      const twin = await scan(
        m,
        await toMain(m, await m.commit({ parent: await m.head(), files: a.files("no-token") })),
      );
      assert.equal(twin.ok, true, `the clean twin passes: ${JSON.stringify(twin)}`);
      const updates = await toMain(
        m,
        await m.commit({ parent: await m.head(), files: a.files(secret) }),
      );
      const finding = refused(await scan(m, updates), secret);
      assert.deepEqual(finding, {
        rule: "shopify-access-token",
        file: "config.py",
        line: 1,
        commit: updates[0]?.new,
      });
    });

  /**
   * gitleaks' own default allowlist skips paths (vendor/, node_modules/, go.sum, *.bin, *.pdf, any
   * path holding "gitleaks.toml", …) and files whose first bytes are a binary format's magic. The
   * gate must not inherit that: a pushed file is read whatever it is called or begins with.
   */
  const skipped: { name: string; path: string; content: (s: string) => string }[] = [
    { name: "under vendor/", path: "vendor/lib/config.py", content: (s) => `T = "${s}"\n` },
    { name: "under node_modules/", path: "node_modules/x/index.js", content: (s) => `t="${s}"\n` },
    { name: "named *.bin", path: "assets/blob.bin", content: (s) => `t=${s}\n` },
    { name: "named go.sum", path: "go.sum", content: (s) => `t=${s}\n` },
    { name: "named gitleaks.toml", path: "tools/gitleaks.toml", content: (s) => `t = "${s}"\n` },
    { name: "starting with PDF magic", path: "notes.txt", content: (s) => `%PDF-1.4\nt=${s}\n` },
  ];
  for (const s of skipped)
    test(`a secret only gitleaks knows, in a file ${s.name}, is refused`, async () => {
      const m = await Mirror.create();
      const twin = await scan(
        m,
        await toMain(
          m,
          await m.commit({ parent: await m.head(), files: { [s.path]: s.content("none") } }),
        ),
      );
      assert.equal(twin.ok, true, `the clean twin passes: ${JSON.stringify(twin)}`);
      const secret = `shpat_${hex(16)}`;
      const updates = await toMain(
        m,
        await m.commit({ parent: await m.head(), files: { [s.path]: s.content(secret) } }),
      );
      const finding = refused(await scan(m, updates), secret);
      assert.equal(finding.rule, "shopify-access-token");
      assert.equal(finding.file, s.path);
    });

  test("more new objects than maxObjects is refused as a limit, never skipped", async () => {
    const m = await Mirror.create();
    let tip = await m.head();
    for (let i = 0; i < 3; i++)
      tip = await m.commit({ parent: tip, files: { [`f${i}.txt`]: `${i}\n` } });
    const updates = await toMain(m, tip);
    const all = await scan(m, updates);
    assert.ok(all.ok, JSON.stringify(all));
    // Three commits, three trees, three blobs.
    assert.equal(all.objects, 9);
    const exact = await scan(m, updates, { maxObjects: 9 });
    assert.equal(exact.ok, true, `exactly the limit passes: ${JSON.stringify(exact)}`);
    const over = await scan(m, updates, { maxObjects: 8 });
    assert.ok(!over.ok && over.tag === "limit", JSON.stringify(over));
    assert.match(over.reason, /9 new objects, more than the 8/);
  });

  test("new objects larger inflated than maxScanBytes are refused as a limit, never skipped", async () => {
    const m = await Mirror.create();
    // 4 MiB of one letter: a few KiB as a pack, 4 MiB to read.
    const updates = await toMain(
      m,
      await m.commit({ parent: await m.head(), files: { "fill.txt": "a".repeat(4 << 20) } }),
    );
    const twin = await scan(m, updates, { maxScanBytes: 5 << 20 });
    assert.equal(twin.ok, true, `within the limit it passes: ${JSON.stringify(twin)}`);
    const over = await scan(m, updates, { maxScanBytes: 3 << 20 });
    assert.ok(!over.ok && over.tag === "limit", JSON.stringify(over));
  });

  /** A push of one 8 MB text file: more than any 1 ms budget reads. */
  const bigPush = async (m: Mirror) => {
    const big = Array.from({ length: 100_000 }, (_, i) => `line ${i} ${hex(32)}`).join("\n");
    return toMain(m, await m.commit({ parent: await m.head(), files: { "big.txt": big } }));
  };

  test("a scan longer than timeoutMs is refused, never ok", async () => {
    const m = await Mirror.create();
    const updates = await bigPush(m);
    const twin = await scan(m, updates);
    assert.equal(twin.ok, true, `with time enough it passes: ${JSON.stringify(twin)}`);
    const r = await scan(m, updates, { timeoutMs: 1 });
    assert.ok(!r.ok && r.tag !== "secret-detected", JSON.stringify(r));
  });

  test("a scan longer than timeoutMs is refused as a limit, whichever step ran out of time", async () => {
    const m = await Mirror.create();
    const r = await scan(m, await bigPush(m), { timeoutMs: 1 });
    assert.ok(!r.ok);
    assert.equal(r.tag, "limit", JSON.stringify(r));
  });

  test("a gitleaks that cannot run, or fails, refuses the push: never ok", async () => {
    const m = await Mirror.create();
    const updates = await toMain(
      m,
      await m.commit({ parent: await m.head(), files: { "a.txt": "a\n" } }),
    );
    assert.equal((await scan(m, updates)).ok, true, "with the real gitleaks it passes");
    const missing = await scan(m, updates, { gitleaks: join(root, "no-such-gitleaks") });
    assert.ok(!missing.ok && missing.tag === "scan-failed", JSON.stringify(missing));
    const failing = await scan(m, updates, { gitleaks: "/bin/false" });
    assert.ok(!failing.ok && failing.tag === "scan-failed", JSON.stringify(failing));
  });

  test("published history is not scanned again: a clean commit over a published secret passes", async () => {
    const secret = KINDS[0]?.make() ?? "";
    const m = await Mirror.create({ "README.md": "# app\n", "old.env": `KEY=${secret}\n` });
    // The same secret, new: refused (the scanner does see it).
    const again = await toMain(
      m,
      await m.commit({ parent: await m.head(), files: { "new.env": `NEW_KEY=${secret}\n` } }),
    );
    refused(await scan(m, again), secret);
    // A clean commit on top of the published one: only its own objects are read.
    const clean = await scan(
      m,
      await toMain(m, await m.commit({ parent: await m.head(), files: { "a.txt": "a\n" } })),
    );
    assert.deepEqual(clean, { ok: true, objects: 3 });
  });

  test("a new ref at a published commit or tag brings nothing new, and nothing of it is scanned", async () => {
    const secret = KINDS[0]?.make() ?? "";
    const m = await Mirror.create();
    const first = await m.head();
    // Upstream's history: a commit whose message, and a tag whose message, hold a key.
    const old = await m.commit({
      parent: first,
      files: { "a.txt": "a\n" },
      message: `rotate ${secret}`,
    });
    const tag = await m.tag(old, "v0", `rotated ${secret}`);
    await m.git(["update-ref", "refs/heads/main", old]);
    await m.git(["update-ref", "refs/tags/v0", tag]);
    const clean = await scan(m, [{ ref: "refs/heads/clean", old: ZERO, new: first }]);
    assert.ok(clean.ok, `a branch at the clean published commit: ${JSON.stringify(clean)}`);
    const branch = await scan(m, [{ ref: "refs/heads/copy", old: ZERO, new: old }]);
    assert.deepEqual(branch, { ok: true, objects: 0 });
    const copy = await scan(m, [{ ref: "refs/tags/v0-copy", old: ZERO, new: tag }]);
    assert.deepEqual(copy, { ok: true, objects: 0 });
  });
});
