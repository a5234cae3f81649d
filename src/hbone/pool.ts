// HBONE connection pool, modelled on ztunnel's: connections are keyed by (source identity, expected
// destination identities, source IP, destination address); each carries up to 100 CONNECT streams (fewer if
// the peer's SETTINGS_MAX_CONCURRENT_STREAMS says so); when all are full a new connection is opened for the same
// key. Concurrent requests for a key with no free connection wait for one shared dial instead of each dialing.
// Connections without streams close after an idle timeout; GOAWAY or a failed PING retires a connection.
import type * as http2 from 'node:http2';
import { formatAuthority } from './headers.js';
import {
  type CreateConnection,
  type DialOptions,
  type Endpoint,
  type TunnelRequest,
  dialHbone,
  openTunnel,
} from './client.js';
import { type Http2Tuning, type KeepaliveOptions, destroySession } from './session.js';
import type { WorkloadCertificate } from '../identity/workload-cert.js';

export interface HbonePoolOptions {
  /** ztunnel's POOL_MAX_STREAMS_PER_CONNECTION. */
  maxStreamsPerConnection?: number;
  /** ztunnel's POOL_UNUSED_RELEASE_TIMEOUT. */
  idleTimeoutMs?: number;
  connectTimeoutMs?: number;
  keepalive?: KeepaliveOptions;
  tuning?: Http2Tuning;
  createConnection?: CreateConnection;
}

export interface PoolConnectOptions extends TunnelRequest {
  /** HBONE endpoint to dial, e.g. `podIP:15008`. */
  destination: Endpoint;
  /** The source workload's certificate; its identity is part of the pool key. */
  certificate: WorkloadCertificate;
  expectedIdentities: readonly string[];
  /** Source IP the connection is made from (spoofed in-pod); part of the pool key. */
  sourceAddress?: string;
}

export const DEFAULT_MAX_STREAMS_PER_CONNECTION = 100;
export const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;
// A peer that accepts connections but closes each one right away must not make a caller loop forever.
const MAX_ACQUIRE_ATTEMPTS = 5;

interface PooledConnection {
  key: string;
  session: http2.ClientHttp2Session;
  /** Streams opened or being opened on this connection. */
  active: number;
  /** No new streams: GOAWAY received, closing, or failed. */
  retired: boolean;
  idleTimer?: NodeJS.Timeout;
}

function poolKey(o: PoolConnectOptions): string {
  // JSON keeps the parts unambiguous whatever characters they contain.
  return JSON.stringify([
    o.certificate.identity,
    [...o.expectedIdentities].sort(),
    o.sourceAddress ?? '',
    formatAuthority(o.destination.address, o.destination.port),
  ]);
}

export class HbonePool {
  private readonly opts: HbonePoolOptions;
  private readonly maxStreams: number;
  private readonly idleTimeoutMs: number;
  private readonly connections = new Map<string, PooledConnection[]>();
  private readonly dialing = new Map<string, Promise<PooledConnection>>();
  private closed = false;

  constructor(opts: HbonePoolOptions = {}) {
    this.opts = opts;
    this.maxStreams = opts.maxStreamsPerConnection ?? DEFAULT_MAX_STREAMS_PER_CONNECTION;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  }

  /** Open HBONE connections (HTTP/2 sessions) across all keys. */
  get connectionCount(): number {
    let n = 0;
    for (const list of this.connections.values()) n += list.length;
    return n;
  }

  /** Opens a CONNECT tunnel; resolves with the stream once the server answered 200. */
  async connect(o: PoolConnectOptions): Promise<http2.ClientHttp2Stream> {
    if (this.closed) throw new Error('HBONE pool is closed');
    const key = poolKey(o);
    for (let attempt = 0; attempt < MAX_ACQUIRE_ATTEMPTS; attempt++) {
      const conn = this.reserve(key) ?? this.reserveOn(await this.sharedDial(key, o));
      if (conn) return this.open(conn, o);
    }
    throw new Error(`no usable HBONE connection to ${formatAuthority(o.destination.address, o.destination.port)}`);
  }

  private capacity(conn: PooledConnection): number {
    const peerLimit = conn.session.remoteSettings.maxConcurrentStreams ?? Infinity;
    return Math.min(this.maxStreams, peerLimit);
  }

  private reserveOn(conn: PooledConnection): PooledConnection | undefined {
    if (conn.retired || conn.session.destroyed || conn.session.closed) return undefined;
    if (conn.active >= this.capacity(conn)) return undefined;
    conn.active++;
    if (conn.idleTimer) {
      clearTimeout(conn.idleTimer);
      conn.idleTimer = undefined;
    }
    return conn;
  }

  private reserve(key: string): PooledConnection | undefined {
    for (const conn of this.connections.get(key) ?? []) {
      const got = this.reserveOn(conn);
      if (got) return got;
    }
    return undefined;
  }

  private sharedDial(key: string, o: PoolConnectOptions): Promise<PooledConnection> {
    let dial = this.dialing.get(key);
    if (!dial) {
      dial = this.dial(key, o).finally(() => this.dialing.delete(key));
      this.dialing.set(key, dial);
    }
    return dial;
  }

  private async dial(key: string, o: PoolConnectOptions): Promise<PooledConnection> {
    const dialOpts: DialOptions = {
      destination: o.destination,
      certificate: o.certificate,
      expectedIdentities: o.expectedIdentities,
    };
    if (o.sourceAddress) dialOpts.sourceAddress = o.sourceAddress;
    if (this.opts.createConnection) dialOpts.createConnection = this.opts.createConnection;
    if (this.opts.tuning) dialOpts.tuning = this.opts.tuning;
    if (this.opts.keepalive) dialOpts.keepalive = this.opts.keepalive;
    if (this.opts.connectTimeoutMs) dialOpts.connectTimeoutMs = this.opts.connectTimeoutMs;
    const session = await dialHbone(dialOpts);
    if (this.closed) {
      destroySession(session);
      throw new Error('HBONE pool is closed');
    }
    const conn: PooledConnection = { key, session, active: 0, retired: false };
    const list = this.connections.get(key) ?? [];
    list.push(conn);
    this.connections.set(key, list);
    session.once('goaway', () => this.retire(conn));
    session.once('close', () => this.remove(conn));
    this.startIdleTimer(conn); // in case every waiter ends up elsewhere
    return conn;
  }

  private async open(conn: PooledConnection, o: PoolConnectOptions): Promise<http2.ClientHttp2Stream> {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = await openTunnel(conn.session, o);
    } catch (error) {
      this.release(conn);
      throw error;
    }
    stream.once('close', () => this.release(conn));
    return stream;
  }

  private release(conn: PooledConnection): void {
    conn.active--;
    if (conn.active === 0) this.startIdleTimer(conn);
  }

  private startIdleTimer(conn: PooledConnection): void {
    if (conn.active > 0 || conn.idleTimer || conn.session.destroyed) return;
    conn.idleTimer = setTimeout(() => {
      conn.idleTimer = undefined;
      if (conn.active === 0) {
        this.retire(conn);
        conn.session.close();
      }
    }, this.idleTimeoutMs);
    conn.idleTimer.unref();
  }

  // Stops handing out new streams on `conn`; its open streams finish undisturbed.
  private retire(conn: PooledConnection): void {
    conn.retired = true;
    const list = this.connections.get(conn.key);
    if (!list) return;
    const i = list.indexOf(conn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.connections.delete(conn.key);
  }

  private remove(conn: PooledConnection): void {
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    this.retire(conn);
  }

  /** Closes every connection: GOAWAY, then a hard close after `graceMs` if streams are still open. */
  async close(graceMs = 5_000): Promise<void> {
    this.closed = true;
    const all = [...this.connections.values()].flat();
    this.connections.clear();
    await Promise.all(
      all.map(
        (conn) =>
          new Promise<void>((resolve) => {
            if (conn.idleTimer) clearTimeout(conn.idleTimer);
            if (conn.session.destroyed) return resolve();
            conn.session.once('close', () => resolve());
            conn.session.close();
            setTimeout(() => destroySession(conn.session), graceMs).unref();
          }),
      ),
    );
  }
}
