// Tracks every inbound connection a pod proxy accepted together with the facts authorization saw, so that a policy
// update can re-check them (ztunnel's ConnectionManager + PolicyWatcher): connections the new policies deny are
// closed; allowed ones are left alone.
import { evaluate, type CompiledPolicy, type RbacConnection } from './rbac.js';
import type { ZtunnelLogger } from './log.js';

/** The access-log error of a connection closed by a policy update. */
export const POLICY_CHANGE_ERROR = 'connection closed due to policy change';

export interface TrackedConnection {
  rbac: RbacConnection;
  /** Tears the connection down (reset both legs); `reason` becomes its access-log error. */
  close(reason: string): void;
}

export class ConnectionManager {
  private readonly live = new Set<TrackedConnection>();

  constructor(
    /** The current policies for this pod's workload, in ztunnel's order. */
    private readonly policies: () => Iterable<CompiledPolicy>,
    private readonly log: ZtunnelLogger,
  ) {}

  get size(): number {
    return this.live.size;
  }

  /** Starts tracking; the returned function stops it (call it when the connection ends). */
  register(conn: TrackedConnection): () => void {
    this.live.add(conn);
    return () => this.live.delete(conn);
  }

  /** Re-evaluates every tracked connection against the current policies; returns how many were closed. */
  reevaluate(): number {
    if (this.live.size === 0) return 0;
    const policies = [...this.policies()];
    let closed = 0;
    for (const conn of [...this.live]) {
      if (evaluate(policies, conn.rbac).allowed) continue;
      this.live.delete(conn);
      closed++;
      const r = conn.rbac;
      this.log.info(
        `connection ${r.srcIdentity ?? r.srcIp}->${r.dstIp}:${r.dstPort} closed because it's no longer allowed after a policy update`,
      );
      conn.close(POLICY_CHANGE_ERROR);
    }
    return closed;
  }

  /** Closes everything still tracked (the pod went away). */
  closeAll(reason: string): void {
    for (const conn of [...this.live]) conn.close(reason);
    this.live.clear();
  }
}
