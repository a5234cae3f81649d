// ztunnel's xDS client metrics (src/xds/metrics.rs), with its names, labels and help texts, so Istio's ztunnel
// dashboard ("XDS Connections", "XDS Pushes") plots Ambit's proxies unchanged.
import { Counter, type Registry } from 'prom-client';

/** Why a stream to the control plane ended, as ztunnel's `ConnectionTerminationReason` encodes it. */
export type XdsTerminationReason = 'ConnectionError' | 'Error' | 'Reconnect' | 'Complete';

interface TypeCounters {
  messages: Counter.Internal;
  bytes: Counter.Internal;
}

export class XdsMetrics {
  private readonly terminations: Counter<'reason'>;
  private readonly messages: Counter<'url'>;
  private readonly messageBytes: Counter<'url'>;
  /** Label children per type URL, resolved once: a push then costs two additions. */
  private readonly byType = new Map<string, TypeCounters>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.terminations = new Counter({
      name: 'istio_xds_connection_terminations_total',
      help: 'The total number of completed connections to xds server (unstable)',
      labelNames: ['reason'],
      registers,
    });
    this.messages = new Counter({ name: 'istio_xds_message_total', help: 'Total number of messages received (unstable)', labelNames: ['url'], registers });
    this.messageBytes = new Counter({
      name: 'istio_xds_message_bytes_total',
      help: 'Total number of bytes received (unstable)',
      labelNames: ['url'],
      registers,
    });
  }

  terminated(reason: XdsTerminationReason): void {
    this.terminations.inc({ reason });
  }

  /** One response of `typeUrl` whose resources' encoded bodies total `bytes` (ztunnel counts the packed values). */
  received(typeUrl: string, bytes: number): void {
    let c = this.byType.get(typeUrl);
    if (!c) {
      c = { messages: this.messages.labels(typeUrl), bytes: this.messageBytes.labels(typeUrl) };
      this.byType.set(typeUrl, c);
    }
    c.messages.inc();
    c.bytes.inc(bytes);
  }
}
