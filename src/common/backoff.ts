// Reconnect back-off for the proxies' links to the control plane (xDS stream, CA). ztunnel doubles from 10 ms up to
// 15 s; ours is capped lower, at 5 s, because the cap is also how long a policy change made during an outage (a
// deleted DENY) can stay unseen after the control plane answers again. Each wait is drawn from the upper half of the
// nominal delay ("equal jitter"), so proxies that lost the same control plane do not all come back in step.

/** Back-off of the proxies' control-plane links. */
export const CONTROL_PLANE_BACKOFF = { initialMs: 200, maxMs: 5_000 } as const;

export class Backoff {
  private nominalMs: number;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
  ) {
    this.nominalMs = initialMs;
  }

  /** The wait before the next attempt, in [nominal/2, nominal] and never above the cap; the nominal then doubles. */
  next(): number {
    const nominal = Math.min(this.nominalMs, this.maxMs);
    this.nominalMs = Math.min(this.nominalMs * 2, this.maxMs);
    return Math.round(nominal / 2 + Math.random() * (nominal / 2));
  }

  /** After a success: the next failure waits the initial delay again. */
  reset(): void {
    this.nominalMs = this.initialMs;
  }
}
