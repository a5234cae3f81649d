// ztunnel's access log (tracing target `access`): one `connection complete` record per connection at close (INFO, or
// ERROR with `error=`), `connection opened` at DEBUG, and `connection failed` at WARN for connections denied before
// there was enough context for a full record. Field names, order and quoting match ztunnel so existing log queries work.
import type { ConnectionInfo } from './connection.js';
import { display, type Fields, type Logger } from './log.js';

export const ACCESS_TARGET = 'access';

/**
 * Bytes as the log shows them. ztunnel's counters are response-oriented and the log "unflips" them per direction:
 * outbound reports what the proxy sent toward the destination, inbound what the destination sent back.
 * `sent`/`received` here are the contract's (source → destination / destination → source).
 */
export function logBytes(direction: ConnectionInfo['direction'], sent: number, received: number): { bytesSent: number; bytesRecv: number } {
  return direction === 'outbound' ? { bytesSent: sent, bytesRecv: received } : { bytesSent: received, bytesRecv: sent };
}

function peerFields(info: ConnectionInfo): Fields {
  const src = info.srcWorkload;
  const dst = info.dstWorkload;
  return {
    'src.addr': display(info.srcAddr),
    // ztunnel prefers the pod name and falls back to the canonical service.
    'src.workload': src?.fromBaggage ? undefined : src?.name || src?.canonicalName || undefined,
    'src.namespace': src?.namespace || undefined,
    'src.identity': info.mtls ? info.srcIdentity : undefined,
    'dst.addr': display(info.dstAddr),
    'dst.hbone_addr': info.hboneAddr === undefined ? undefined : display(info.hboneAddr),
    'dst.service': info.dstService?.hostname,
    'dst.workload': dst?.name || dst?.canonicalName || undefined,
    'dst.namespace': dst?.namespace || undefined,
    'dst.identity': info.mtls ? (info.dstIdentity ?? dst?.identity) : undefined,
    direction: info.direction,
  };
}

export class AccessLog {
  constructor(private readonly log: Logger) {}

  opened(info: ConnectionInfo): void {
    if (this.log.enabled('debug')) this.log.debug('connection opened', peerFields(info));
  }

  complete(info: ConnectionInfo, sent: number, received: number, durationMs: number, error?: string): void {
    const level = error === undefined ? 'info' : 'error';
    if (!this.log.enabled(level)) return;
    const { bytesSent, bytesRecv } = logBytes(info.direction, sent, received);
    const fields = peerFields(info);
    fields.bytes_sent = bytesSent;
    fields.bytes_recv = bytesRecv;
    fields.duration = `${Math.floor(durationMs)}ms`;
    if (error === undefined) this.log.info('connection complete', fields);
    else {
      fields.error = error;
      this.log.error('connection complete', fields);
    }
  }

  failed(info: Pick<ConnectionInfo, 'direction' | 'srcAddr' | 'dstAddr'>, error: string): void {
    this.log.warn('connection failed', {
      'src.addr': display(info.srcAddr),
      'dst.addr': display(info.dstAddr),
      direction: info.direction,
      error,
    });
  }
}
