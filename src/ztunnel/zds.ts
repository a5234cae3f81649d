// ZDS client: how the node's CNI agent (the local cluster) hands captured pods to this ztunnel. Ambit's variant of
// Istio's ZDS: a Unix *stream* socket carrying newline-delimited JSON instead of SOCK_SEQPACKET protobuf, and the pod's
// network namespace as a path (`/run/netns/<name>`) instead of an fd passed with SCM_RIGHTS, which Node cannot
// receive. The flow is Istio's: ztunnel connects (retrying with backoff up to 15 s) and says hello; the agent replays
// every current pod as `add`, then `snapshotSent` (ztunnel drops pods it has that were not replayed), then sends
// `add`/`del` as pods come and go. Every message is answered with `{"ack":{"error":""}}`; a non-empty error means the
// pod could not be served.
import { createConnection, type Socket } from 'node:net';
import type { ZtunnelLogger } from './log.js';

export const ZDS_VERSION = 'V1';

/** A captured pod as ZDS describes it. */
export interface ZdsPod {
  /** The pod's uid (Kubernetes metadata.uid). */
  uid: string;
  name: string;
  namespace: string;
  serviceAccount: string;
  /** Path of the pod's network namespace, e.g. `/run/netns/<name>`. */
  netnsPath: string;
}

/** What the process does with ZDS messages; a rejected promise becomes the ack's error text. */
export interface ZdsHandler {
  add(pod: ZdsPod): Promise<void>;
  del(uid: string): Promise<void>;
  /** After the replay: `keep` holds the uids of every pod added since this connection opened. */
  snapshotSent(keep: ReadonlySet<string>): Promise<void>;
}

export interface ZdsClientOptions {
  path: string;
  handler: ZdsHandler;
  log: ZtunnelLogger;
  initialBackoffMs?: number;
  /** ztunnel's cap: 15 s. */
  maxBackoffMs?: number;
}

/** Turns a parsed line into a typed message; throws with what is wrong. */
function parseMessage(
  line: string,
): { kind: 'add'; pod: ZdsPod } | { kind: 'del'; uid: string } | { kind: 'snapshotSent' } | { kind: 'keep'; uid: string } {
  let msg: any;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    throw new Error(`invalid JSON: ${(e as Error).message}`);
  }
  if (msg === null || typeof msg !== 'object') throw new Error('message is not a JSON object');
  const str = (v: unknown, what: string): string => {
    if (typeof v !== 'string' || v === '') throw new Error(`${what} must be a non-empty string`);
    return v;
  };
  if (msg.add !== undefined) {
    const a = msg.add;
    const info = a?.workloadInfo ?? {};
    return {
      kind: 'add',
      pod: {
        uid: str(a?.uid, 'add.uid'),
        name: str(info.name, 'add.workloadInfo.name'),
        namespace: str(info.namespace, 'add.workloadInfo.namespace'),
        serviceAccount: typeof info.serviceAccount === 'string' && info.serviceAccount !== '' ? info.serviceAccount : 'default',
        netnsPath: str(a?.netns, 'add.netns'),
      },
    };
  }
  if (msg.del !== undefined) return { kind: 'del', uid: str(msg.del?.uid, 'del.uid') };
  if (msg.keep !== undefined) return { kind: 'keep', uid: str(msg.keep?.uid, 'keep.uid') };
  if (msg.snapshotSent !== undefined) return { kind: 'snapshotSent' };
  throw new Error(`unknown message with keys ${Object.keys(msg).join(', ') || '(none)'}`);
}

export class ZdsClient {
  private socket: Socket | undefined;
  private backoffMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Messages are handled one at a time, in order, like the agent sends them (it waits for each ack). */
  private queue: Promise<void> = Promise.resolve();
  private seen = new Set<string>();
  /** Connected to the agent now. */
  connected = false;
  /** The agent finished replaying the current pods on the present connection. */
  snapshotApplied = false;
  private connectionListeners = new Set<() => void>();

  constructor(private readonly opts: ZdsClientOptions) {
    this.backoffMs = opts.initialBackoffMs ?? 100;
  }

  start(): void {
    this.connect();
  }

  /** Called whenever `connected` or `snapshotApplied` changes. */
  onStatus(cb: () => void): () => void {
    this.connectionListeners.add(cb);
    return () => this.connectionListeners.delete(cb);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.socket?.destroy();
    this.socket = undefined;
    this.setStatus(false, false);
  }

  private setStatus(connected: boolean, snapshotApplied: boolean): void {
    if (this.connected === connected && this.snapshotApplied === snapshotApplied) return;
    this.connected = connected;
    this.snapshotApplied = snapshotApplied;
    for (const cb of [...this.connectionListeners]) cb();
  }

  private connect(): void {
    if (this.closed) return;
    const socket = createConnection(this.opts.path);
    this.socket = socket;
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      this.opts.log.info('connected to the CNI agent', { path: this.opts.path });
      this.backoffMs = this.opts.initialBackoffMs ?? 100;
      this.seen = new Set();
      this.setStatus(true, false);
      socket.write(`${JSON.stringify({ hello: { version: ZDS_VERSION } })}\n`);
    });
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) this.queue = this.queue.then(() => this.handleLine(socket, line));
      }
    });
    socket.on('error', (e) => {
      if (!this.connected) this.opts.log.warn(`cannot connect to the CNI agent at ${this.opts.path}: ${e.message}; retrying in ${this.backoffMs}ms`);
      else this.opts.log.warn(`CNI agent connection error: ${e.message}`);
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      const was = this.connected;
      this.setStatus(false, false);
      if (this.closed) return;
      if (was) this.opts.log.warn(`CNI agent connection closed; reconnecting in ${this.backoffMs}ms`);
      const delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs ?? 15_000);
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }

  private async handleLine(socket: Socket, line: string): Promise<void> {
    let error = '';
    try {
      const msg = parseMessage(line);
      switch (msg.kind) {
        case 'add':
          this.seen.add(msg.pod.uid);
          await this.opts.handler.add(msg.pod);
          break;
        case 'keep':
          this.seen.add(msg.uid);
          break;
        case 'del':
          this.seen.delete(msg.uid);
          await this.opts.handler.del(msg.uid);
          break;
        case 'snapshotSent':
          await this.opts.handler.snapshotSent(new Set(this.seen));
          if (this.socket === socket) this.setStatus(true, true);
          break;
      }
    } catch (e) {
      error = (e as Error).message || String(e);
      this.opts.log.warn(`failed to handle CNI agent message: ${error}`, { message: line.length > 200 ? `${line.slice(0, 200)}…` : line });
    }
    if (!socket.destroyed) socket.write(`${JSON.stringify({ ack: { error } })}\n`);
  }
}
