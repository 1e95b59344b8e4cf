import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  availableMemoryMib,
  engineLimitError,
  memoryRefusal,
  START_MEMORY_MIB,
} from "../../../src/backends/docker/capacity.js";
import { hostRoutes } from "../../../src/backends/docker/networks.js";
import { formatCidr } from "../../../src/backends/address-pool.js";
import { CommandFailedError } from "../../../src/exec/run.js";

const refused = (stderr: string) =>
  new CommandFailedError(
    "docker run",
    125,
    `Error response from daemon: ${stderr}\n`,
    "exited with status 125",
  );

describe("a full machine, in one sentence", () => {
  const cases: [string, RegExp, RegExp][] = [
    [
      "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: cannot allocate memory",
      /^the engine could not get memory for this bottle: 7 bottles are on this engine \(the engine said: .*cannot allocate memory\)$/,
      /stop bottles you no longer need/,
    ],
    [
      "mkdir /var/lib/docker/overlay2/x: no space left on device",
      /^the disk the engine writes to is full: 7 bottles/,
      /free space under Docker's data root/,
    ],
    ["fork: resource temporarily unavailable", /limit on processes or threads/, /kernel\.pid_max/],
    ["pipe2: too many open files", /limit on open files/, /LimitNOFILE/],
    [
      "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
      /^the engine has no network addresses left: 7 bottles are on this engine/,
      /docker network ls/,
    ],
  ];
  for (const [stderr, message, hint] of cases)
    test(`"${stderr.slice(0, 40)}…" says what ran out, how many bottles, and what to do`, () => {
      const err = engineLimitError(refused(stderr), 7);
      assert.ok(err);
      assert.match(err.message, message);
      assert.match(err.hint ?? "", hint);
      assert.equal(err.exitCode, 3);
    });

  test("any other failure is not a full machine", () => {
    assert.equal(engineLimitError(refused("No such image: bot-bottle/shell:latest"), 1), undefined);
    assert.equal(engineLimitError(new Error("cannot allocate memory"), 1), undefined);
  });

  test("a start is refused below the memory a bottle needs, and only then", async () => {
    const mib = await availableMemoryMib(() =>
      Promise.resolve("MemTotal:       24000000 kB\nMemAvailable:     153600 kB\n"),
    );
    assert.equal(mib, 150);
    const err = memoryRefusal(mib, 1);
    assert.match(
      err?.message ?? "",
      new RegExp(
        `^this machine has 150 MiB of memory available, less than the ${START_MEMORY_MIB} MiB a bottle needs to start: 1 bottle is on this engine$`,
      ),
    );
    assert.equal(memoryRefusal(START_MEMORY_MIB, 1), undefined);
    assert.equal(memoryRefusal(undefined, 1), undefined);
    assert.equal(await availableMemoryMib(() => Promise.reject(new Error("no /proc"))), undefined);
  });
});

describe("the host's routes", () => {
  test("are read from /proc/net/route, little-endian, without the default route", async () => {
    const table = [
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
      "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0",
      "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0",
      "tun0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0",
      "bbab12cd34e\t10C0D50A\t00000000\t0001\t0\t0\t0\tF0FFFFFF\t0\t0\t0",
      "lo\t0100007F\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0",
    ].join("\n");
    const routes = await hostRoutes(() => Promise.resolve(table));
    assert.deepEqual(
      routes.map((r) => `${formatCidr(r.subnet)} ${r.device}`),
      [
        "172.17.0.0/16 docker0",
        "10.0.0.0/8 tun0",
        "10.213.192.16/28 bbab12cd34e",
        "127.0.0.1/32 lo",
      ],
    );
    assert.deepEqual(await hostRoutes(() => Promise.reject(new Error("none"))), []);
  });
});
