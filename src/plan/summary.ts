/** The preflight summary: a BottlePlan as a person reads it before saying yes. */
import { resolve } from "node:path";
import type { EgressConfig, RouteRule } from "../shared/egress-config.js";
import type { BottlePlan } from "../backends/plan.js";

export function describeRoute(r: RouteRule): string {
  const parts = [r.port !== undefined ? `${r.host}:${r.port}` : r.host];
  if (r.tlsPassthrough) parts.push("TLS passthrough (not decrypted)");
  if (r.paths) parts.push(`paths ${r.paths.join(" ")}`);
  if (r.methods) parts.push(r.methods.join(","));
  if (r.allowIpLiteral) parts.push("IP literal allowed");
  if (r.auth)
    parts.push(
      `${r.auth.header}: ${r.auth.scheme ? r.auth.scheme + " " : ""}$${r.auth.tokenEnv} (the agent holds a placeholder)`,
    );
  return parts.join("  ");
}

/** The routes, one per line: what the agent may reach, and that nothing else is. */
export function describeRoutes(
  egress: EgressConfig,
  template?: { name: string; hosts: readonly string[] },
): string[] {
  const head = `  egress      ${egress.routes.length ? `${egress.routes.length} route${egress.routes.length === 1 ? "" : "s"}; everything else is refused` : "no routes: every request is refused"}`;
  const mapped = Object.entries(egress.extraHosts).map(([h, ip]) => `${h} -> ${ip}`);
  return [
    head,
    ...egress.routes.map(
      (r) =>
        `              ${describeRoute(r)}${template?.hosts.includes(r.host) ? `  (from the ${template.name} template)` : ""}`,
    ),
    ...(mapped.length ? [`              extra_hosts ${mapped.join(", ")}`] : []),
  ];
}

export function describePlan(plan: BottlePlan): string[] {
  const a = plan.agentContainer;
  const lines = [
    `bottle ${plan.slug}  (agent ${plan.agent.name}, template ${plan.agent.template}, bottle ${plan.bottle.name}, backend ${plan.backend})`,
    ...(plan.agent.cli ? [`  agent CLI   ${plan.agent.cli} (pinned in the image)`] : []),
    ...(plan.agentContainer.login
      ? [
          `  login       ${plan.agentContainer.login.what}, forwarded: its tokens go to the bundle only; the agent gets placeholders, and refreshes go through the proxy`,
        ]
      : []),
    `  workspace   ${plan.workspace.host} -> ${plan.workspace.container} (the only host path the agent sees)`,
    ...(plan.backend === "smolmachines"
      ? [
          `  agent       ${a.name}  smolvm microVM from image ${a.image}`,
          `              own kernel; memory ${a.limits.memory}; its network admits only smolvm's gateway, where the bundle's ports are published on random 127.0.0.1 ports`,
        ]
      : [
          `  agent       ${a.name}  image ${a.image}${a.build.layers.length ? ` (${[a.build.template, ...a.build.layers.map((l) => l.what)].join(" → ")})` : ""}`,
          `              user ${a.user} (uid ${a.uid}), no capabilities, no-new-privileges, memory ${a.limits.memory}, pids ${a.limits.pids}, IPv6 off`,
        ]),
    `  bundle      ${plan.bundle.name}  image ${plan.bundle.image}`,
    `              uid ${plan.bundle.uid}, no capabilities, read-only root, memory ${plan.bundle.limits.memory}, pids ${plan.bundle.limits.pids}, cpus ${plan.bundle.limits.cpus}`,
    `              ${plan.bundle.aliases.length ? `reachable from the agent as ${plan.bundle.aliases.join(", ")}` : "reachable from the agent at host.smolvm.internal"}; ports: ${Object.entries(
      plan.bundle.ports,
    )
      .map(([d, p]) => `${d} ${p}`)
      .join(", ")}`,
    `  networks    ${plan.networks.internal ? `${plan.networks.internal.name} (internal, no host address) and ` : ""}${plan.networks.egress.name} (bundle only), each a /${plan.networks.pool.prefix} of ${plan.networks.pool.cidr}${plan.bundle.extraNetworks.length ? `; the bundle also joins ${plan.bundle.extraNetworks.join(", ")}` : ""}`,
    ...describeRoutes(plan.egress, { name: plan.agent.template, hosts: plan.agent.templateHosts }),
    `  secrets     ${plan.bundle.secretEnv.length ? plan.bundle.secretEnv.map((n) => `$${n}`).join(", ") + " (to the bundle only; values never shown)" : "none"}`,
    `  trusted     ${trustedLine(plan)}`,
    `  state       ${plan.stateDir}`,
  ];
  return lines;
}

/** Notes worth reading before starting: how the agent gets to write its workspace. */
export function planNotes(plan: BottlePlan): string[] {
  const a = plan.agentContainer;
  const grant = plan.workspace.grant;
  if (grant)
    return [
      `${plan.workspace.host} belongs to root, and the agent never runs as root: start lets uid ${grant.uid} (the agent) read and write it with an ACL (undo: setfacl -R -x u:${grant.uid},d:u:${grant.uid} ${plan.workspace.host})`,
    ];
  return [
    `the agent runs as uid ${a.uid} (gid ${a.gid}), ${a.uid === 1000 ? "its image's user" : "the workspace's owner"}: files it makes in ${plan.workspace.host} are ${a.uid === 1000 ? "uid 1000's" : "yours"}`,
  ];
}

/** Each trusted file and why the agent cannot change it. */
function trustedLine(plan: BottlePlan): string {
  const bound = new Set(plan.agentContainer.readOnlyFiles.map((f) => f.host));
  const outside = plan.trusted.filter((f) => !bound.has(resolve(f.path)));
  const inside = plan.trusted.filter((f) => bound.has(resolve(f.path)));
  return [
    ...(outside.length
      ? [
          `${outside.map((f) => `${f.what} ${f.path}`).join(", ")} (outside the workspace: the agent cannot change them)`,
        ]
      : []),
    ...(inside.length
      ? [
          `${inside.map((f) => `${f.what} ${f.path}`).join(", ")} (in the workspace folder, bound read-only: the agent cannot write, move or remove them)`,
        ]
      : []),
  ].join("; ");
}
