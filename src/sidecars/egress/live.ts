/**
 * Connections that outlive one request — passthrough tunnels and upgraded WebSockets — held here
 * so that a reload can decide each again: one whose route is gone is closed, not left open under
 * rules that no longer exist.
 */
import type { EgressConfig } from "../../shared/egress-config.js";

export interface LiveConnection {
  /** Would this connection be allowed under `config`? A check that throws counts as no. */
  allowedUnder(config: EgressConfig): boolean;
  close(why: string): void;
}

export class Live {
  private readonly open = new Set<LiveConnection>();

  /** Holds `c` until the returned function is called (when it closes). */
  add(c: LiveConnection): () => void {
    this.open.add(c);
    return () => this.open.delete(c);
  }

  get size(): number {
    return this.open.size;
  }

  /** Closes every connection the new rules no longer allow; returns how many. */
  recheck(config: EgressConfig): number {
    let closed = 0;
    for (const c of [...this.open]) {
      let ok = false;
      try {
        ok = c.allowedUnder(config);
      } catch {
        ok = false;
      }
      if (!ok) {
        this.open.delete(c);
        c.close("route-removed");
        closed++;
      }
    }
    return closed;
  }

  closeAll(why: string): void {
    for (const c of [...this.open]) c.close(why);
    this.open.clear();
  }
}
