import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { concerns, eventsArgs, parseEvent } from "../../../src/backends/docker/events.js";
import { LABELS } from "../../../src/shared/labels.js";

/** A line as `docker events --format '{{json .}}'` writes it. */
const line = (action: string, attributes: Record<string, string>, type = "container") =>
  JSON.stringify({
    status: action,
    id: "13fd93ff517c",
    from: "bot-bottle/bundle:latest",
    Type: type,
    Action: action,
    Actor: { ID: "13fd93ff517c", Attributes: { name: "bot-bottle-x-bundle", ...attributes } },
    scope: "local",
    time: 1796663821,
    timeNano: 1796663821622000000,
  });

const bottle = { [LABELS.schema]: "1", [LABELS.slug]: "dev-a1b2" };

describe("reading the engine's container events", () => {
  test("asks the engine for bottles' start, die, destroy and health events only, by slug label", () => {
    const args = eventsArgs(new Date(1796663821622));
    assert.deepEqual(args.slice(0, 3), ["events", "--since", "1796663821.622"]);
    const filters = args.flatMap((a, i) => (args[i - 1] === "--filter" ? [a] : []));
    assert.deepEqual(filters, [
      "type=container",
      `label=${LABELS.slug}`,
      "event=start",
      "event=die",
      "event=destroy",
      "event=health_status",
    ]);
    assert.ok(!filters.some((f) => f.startsWith("event=exec")));
  });

  test("a bottle's container events concern the backend named by its label", () => {
    const docker = parseEvent(line("start", bottle));
    assert.deepEqual(docker, {
      action: "start",
      name: "bot-bottle-x-bundle",
      slug: "dev-a1b2",
      backend: "docker",
    });
    assert.ok(docker && concerns(docker, "docker"));
    assert.ok(docker && !concerns(docker, "smolmachines"));
    const smol = parseEvent(line("die", { ...bottle, [LABELS.backend]: "smolmachines" }));
    assert.ok(smol && concerns(smol, "smolmachines"));
    assert.ok(smol && !concerns(smol, "docker"));
  });

  test("a health verdict concerns the listing; exec and other actions do not", () => {
    for (const action of ["health_status: healthy", "health_status: unhealthy", "destroy"]) {
      const event = parseEvent(line(action, bottle));
      assert.ok(event && concerns(event, "docker"), action);
    }
    // The engine prefix-matches every event filter once health_status is among them.
    for (const action of [
      "exec_start: sh -c true",
      "exec_die",
      "kill",
      "stop",
      "started",
      "health",
    ]) {
      const event = parseEvent(line(action, bottle));
      assert.ok(event && !concerns(event, "docker"), action);
    }
  });

  test("a container with no slug, another type, or a line that is not JSON is no bottle's", () => {
    assert.equal(parseEvent(line("start", { [LABELS.schema]: "1" })), undefined);
    assert.equal(parseEvent(line("start", bottle, "network")), undefined);
    assert.equal(parseEvent("Error response from daemon: not JSON"), undefined);
    assert.equal(parseEvent("null"), undefined);
    assert.equal(parseEvent(JSON.stringify({ Type: "container", Action: "start" })), undefined);
  });
});
