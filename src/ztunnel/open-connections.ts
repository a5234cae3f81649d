// The connections one captured pod has open right now, for the admin `/config_dump` (`workloadState.<uid>.connections`,
// what `istioctl ztunnel-config connections` reads). It wraps the pod's telemetry: every proxied connection opens a
// tracker there and closes it when it ends, so this sees each one without hooks in the proxies themselves.
import type { ConnectionInfo, ConnectionTelemetry, ConnectionTracker } from '../telemetry/connection.js';

/** One entry of ztunnel's `connections.inbound[]` / `connections.outbound[]`. */
export interface ConnectionDump {
  src: string;
  /** Outbound: the destination the application dialed (a Service VIP:port). Inbound: null, as ztunnel shows for HBONE. */
  originalDst: string | null;
  /** Inbound: the application's `ip:port` (the HBONE target). Outbound: the peer's 15008, or the target for TCP. */
  actualDst: string;
  protocol: 'HBONE' | 'TCP';
}

export class OpenConnections implements ConnectionTelemetry {
  private readonly live = new Set<ConnectionInfo>();

  constructor(private readonly inner: ConnectionTelemetry) {}

  open(info: ConnectionInfo): ConnectionTracker {
    const tracker = this.inner.open(info);
    this.live.add(info);
    const live = this.live;
    return {
      sent: (n) => tracker.sent(n),
      received: (n) => tracker.received(n),
      close: (error) => {
        live.delete(info);
        tracker.close(error);
      },
    };
  }

  failed(info: Parameters<ConnectionTelemetry['failed']>[0], error: Parameters<ConnectionTelemetry['failed']>[1]): void {
    this.inner.failed(info, error);
  }

  /** ztunnel's serialization order: inbound, then outbound, each oldest first. */
  dump(): { inbound: ConnectionDump[]; outbound: ConnectionDump[] } {
    const out = { inbound: [] as ConnectionDump[], outbound: [] as ConnectionDump[] };
    for (const c of this.live) {
      const protocol = c.hboneAddr !== undefined ? 'HBONE' : 'TCP';
      if (c.direction === 'inbound') out.inbound.push({ src: c.srcAddr, originalDst: null, actualDst: c.hboneAddr ?? c.dstAddr, protocol });
      else out.outbound.push({ src: c.srcAddr, originalDst: c.originalDstAddr ?? c.dstAddr, actualDst: c.dstAddr, protocol });
    }
    return out;
  }
}
