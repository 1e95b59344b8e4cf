/**
 * A root-owned workspace made writable for the agent, which never runs as root: an ACL entry for
 * the agent's uid on the folder and everything in it, and a default entry so what is made there
 * later stays writable. Nothing else about the folder changes; `setfacl -R -x` undoes it.
 */
import { PrerequisiteError } from "../errors.js";
import { CommandFailedError, CommandNotFoundError, run } from "../exec/run.js";

export async function grantWorkspace(path: string, uid: number): Promise<void> {
  try {
    await run("setfacl", ["-R", "-P", "-m", `u:${uid}:rwX,d:u:${uid}:rwX`, "--", path]);
  } catch (err) {
    const why =
      err instanceof CommandNotFoundError
        ? "setfacl (Debian package acl) is not installed"
        : err instanceof CommandFailedError
          ? (err.stderr.trim().split("\n")[0] ?? "setfacl failed")
          : String(err);
    throw new PrerequisiteError(
      `${path} belongs to root, and the agent (uid ${uid}) could not be given write access to it: ${why}`,
      `\`bot-bottle setup\` installs acl; or make the workspace yours (chown -R "$(id -u):$(id -g)" ${path}) — the agent then runs as you`,
    );
  }
}
