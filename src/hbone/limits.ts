// Bounds on what HBONE peers can hold open on a proxy's inbound side. ztunnel has none of these; Envoy has an idle
// timeout for connections without streams (1 h by default) and optional listener connection limits. Without them a
// peer (or many) could open connections and leave them idle until the process runs out of file descriptors.
//
// The counts are the process's: every HBONE listener of a ztunnel (one per captured pod) shares one limiter, so a
// peer flooding several pods on a node is bounded once. A refused connection is closed at accept, before TLS, and
// each cap logs at most once per REFUSAL_LOG_INTERVAL_MS with the number refused since, so a flood cannot flood the log.

export interface HboneServerLimits {
  /** A session with no open CONNECT stream for this long is closed with GOAWAY (0: never). */
  idleTimeoutMs: number;
  /** Open HBONE connections (TLS handshakes included) across the process. */
  maxConnections: number;
  /** Open HBONE connections from one peer address. */
  maxConnectionsPerPeer: number;
}

/**
 * Defaults. Idle: twice the client pool's POOL_UNUSED_RELEASE_TIMEOUT (5 min), so a well-behaved client closes
 * its idle connection first and the server's timeout only reaps the ones that leaked. Caps: well above what the
 * pool needs (one connection per 100 concurrent streams and pool key; a peer address is one source pod, or one
 * waypoint) and well below the file-descriptor limits a proxy runs with (each stream also holds an upstream socket).
 */
export const HBONE_SERVER_LIMITS: Readonly<HboneServerLimits> = {
  idleTimeoutMs: 10 * 60_000,
  maxConnections: 8192,
  maxConnectionsPerPeer: 512,
};

/** At most one "refusing" line per cap and per this period. */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;

export class HboneConnectionLimiter {
  private total = 0;
  private readonly perPeer = new Map<string, number>();
  private readonly totalRefusals = new RefusalLog();
  private readonly peerRefusals = new RefusalLog();

  constructor(
    private readonly limits: Pick<HboneServerLimits, 'maxConnections' | 'maxConnectionsPerPeer'>,
    private readonly warn: (message: string) => void,
  ) {}

  /** Open connections counted now. */
  get open(): number {
    return this.total;
  }

  /** Counts a new connection from `peer` and returns true, or returns false (and maybe logs) when a cap is reached. */
  admit(peer: string): boolean {
    const fromPeer = this.perPeer.get(peer) ?? 0;
    if (this.total >= this.limits.maxConnections) {
      this.totalRefusals.refuse(this.warn, () => `refusing HBONE connection from ${peer}: ${this.total} connections open, the limit (HBONE_MAX_CONNECTIONS)`);
      return false;
    }
    if (fromPeer >= this.limits.maxConnectionsPerPeer) {
      this.peerRefusals.refuse(this.warn, () => `refusing HBONE connection from ${peer}: ${fromPeer} connections open from this peer, the limit (HBONE_MAX_CONNECTIONS_PER_PEER)`);
      return false;
    }
    this.total++;
    this.perPeer.set(peer, fromPeer + 1);
    return true;
  }

  /** A connection `admit` counted has closed. */
  release(peer: string): void {
    this.total--;
    const n = (this.perPeer.get(peer) ?? 1) - 1;
    if (n <= 0) this.perPeer.delete(peer);
    else this.perPeer.set(peer, n);
  }

}

/** One cap's refusals: the first logs, the next ones within REFUSAL_LOG_INTERVAL_MS are only counted. */
class RefusalLog {
  private lastLogAt = -Infinity;
  private refusedSinceLog = 0;

  /** `message` is built only when a line is written: a flood costs no string per refusal. */
  refuse(warn: (message: string) => void, message: () => string): void {
    this.refusedSinceLog++;
    const now = performance.now();
    if (now - this.lastLogAt < REFUSAL_LOG_INTERVAL_MS) return;
    const others = this.refusedSinceLog - 1;
    warn(others > 0 ? `${message()}; ${others} more refused since the last report` : message());
    this.lastLogAt = now;
    this.refusedSinceLog = 0;
  }
}
