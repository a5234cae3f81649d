// The CNI agent's side of ZDS: how the cluster hands captured pods to its node's ztunnel. Istio's ZDS runs over a
// SOCK_SEQPACKET socket with one protobuf message per datagram and the pod's netns as an SCM_RIGHTS fd; Node can
// neither open SEQPACKET sockets nor receive fds, so Ambit's variant is a stream socket carrying newline-delimited
// JSON, and `add` names the netns by its bind-mount path. The flow is Istio's: ztunnel says hello, the server
// replays every captured pod (one message at a time, each waiting for its ack), sends snapshotSent, then live
// add/del follow. See docs/local-cluster.md ("The mesh").
import { existsSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';

export interface ZdsWorkload {
  /** The pod's metadata.uid. */
  uid: string;
  workloadInfo: { name: string; namespace: string; serviceAccount: string };
  /** Path of the pod's network namespace (Istio passes an fd instead). */
  netns: string;
}

type ServerMessage = { add: ZdsWorkload } | { del: { uid: string } } | { snapshotSent: Record<string, never> };

/** Istio's CNI agent gives ztunnel 5 s to answer each message. */
export const ZDS_ACK_TIMEOUT_MS = 5000;
/** How long a new pod waits for its node's ztunnel to connect (e.g. right after the cluster starts). */
export const ZDS_CONNECT_WAIT_MS = 20_000;

/** One connected ztunnel: messages go out one at a time, each waiting for its ack. */
class ZtunnelConnection {
  private buffered = '';
  private queue: Promise<void> = Promise.resolve();
  private waiting: { resolve(error: string): void; reject(err: Error): void } | undefined;
  private helloSeen!: () => void;
  readonly hello = new Promise<void>((resolve) => (this.helloSeen = resolve));
  closed = false;

  constructor(
    readonly socket: Socket,
    private readonly where: string,
    /** Order of acceptance: higher is newer. */
    readonly seq: number,
    private readonly onClose: () => void,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', () => undefined); // 'close' follows and reports it.
    socket.on('close', () => {
      this.closed = true;
      this.helloSeen(); // Nothing waits for a hello that cannot come; sends now fail as "not connected".
      this.waiting?.reject(new Error(`ztunnel disconnected from ${this.where}`));
      this.waiting = undefined;
      this.onClose();
    });
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl).trim();
      this.buffered = this.buffered.slice(nl + 1);
      if (!line) continue;
      let msg: { hello?: { version?: string }; ack?: { error?: string } };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        this.socket.destroy(new Error(`bad ZDS message from ztunnel on ${this.where}: ${line.slice(0, 100)}`));
        return;
      }
      if (msg.hello) this.helloSeen();
      else if (msg.ack && this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w.resolve(msg.ack.error ?? '');
      }
    }
    if (this.buffered.length > 1 << 20) this.socket.destroy(new Error('ZDS line too long'));
  }

  /** Sends one message after the previous one was answered; resolves with ztunnel's error text ('' = ACK). */
  send(message: ServerMessage): Promise<string> {
    const result = this.queue.then(
      () =>
        new Promise<string>((resolve, reject) => {
          if (this.closed) return reject(new Error(`ztunnel on ${this.where} is not connected`));
          const timer = setTimeout(() => {
            this.waiting = undefined;
            reject(new Error(`ztunnel on ${this.where} did not acknowledge within ${ZDS_ACK_TIMEOUT_MS / 1000}s`));
            // A ztunnel that stops answering is out of step with us: make it reconnect and take a fresh snapshot.
            this.socket.destroy();
          }, ZDS_ACK_TIMEOUT_MS);
          this.waiting = {
            resolve: (e) => (clearTimeout(timer), resolve(e)),
            reject: (e) => (clearTimeout(timer), reject(e)),
          };
          this.socket.write(JSON.stringify(message) + '\n');
        }),
    );
    this.queue = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/**
 * The ZDS server of one node. It holds the node's captured pods: `add`/`del` change that set and, when a ztunnel is
 * connected, deliver the change and wait for its ack. A ztunnel that (re)connects gets the whole set as a snapshot.
 * As Istio's node agent, it keeps every connected ztunnel: during a rolling restart the old and the new one overlap,
 * `add` goes to the newest connection, `del` to all of them (the old one may still be serving the pod).
 */
export class ZdsServer {
  private readonly workloads = new Map<string, ZdsWorkload>();
  private server: Server | undefined;
  /** Open connections, oldest first. */
  private readonly conns: ZtunnelConnection[] = [];
  /** Resolves when a connection has received its snapshot (rejects when the snapshot failed). */
  private readonly synced = new WeakMap<ZtunnelConnection, Promise<void>>();
  /** Connections accepted so far: a rolling restart waits for one newer than it started with. */
  private accepted = 0;
  private readonly connectWaiters = new Set<() => void>();

  constructor(
    readonly socketPath: string,
    private readonly node: string,
    private readonly log: (line: string) => void,
  ) {}

  async start(): Promise<void> {
    if (existsSync(this.socketPath)) unlinkSync(this.socketPath); // Left by a crashed supervisor.
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  close(): void {
    for (const wake of this.connectWaiters) wake();
    for (const c of this.conns) c.socket.destroy();
    this.server?.close();
  }

  get connected(): boolean {
    return this.newest !== undefined;
  }

  /** How many ztunnel connections were accepted so far (pass it to `waitForSnapshot`). */
  get connectionCount(): number {
    return this.accepted;
  }

  private get newest(): ZtunnelConnection | undefined {
    return this.conns[this.conns.length - 1];
  }

  private accept(socket: Socket): void {
    const seq = ++this.accepted;
    const conn = new ZtunnelConnection(socket, this.node, seq, () => {
      const i = this.conns.indexOf(conn);
      if (i < 0) return;
      this.conns.splice(i, 1);
      this.log(`ZDS: ztunnel on ${this.node} disconnected, total connected: ${this.conns.length}`);
      for (const wake of this.connectWaiters) wake();
    });
    this.conns.push(conn);
    const synced = this.replay(conn);
    synced.catch(() => undefined);
    this.synced.set(conn, synced);
    for (const wake of this.connectWaiters) wake();
  }

  /** Waits up to `timeoutMs` for `ready()` to return a value, re-checking whenever a ztunnel connects or leaves. */
  private async waitFor<T>(timeoutMs: number, ready: () => T | undefined): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = ready();
      const left = deadline - Date.now();
      if (value !== undefined || left <= 0) return value;
      let wake!: () => void;
      const changed = new Promise<void>((resolve) => (wake = resolve));
      this.connectWaiters.add(wake);
      const timer = setTimeout(wake, left);
      try {
        await changed;
      } finally {
        clearTimeout(timer);
        this.connectWaiters.delete(wake);
      }
    }
  }

  /** The newest connection, waiting up to `timeoutMs` for a ztunnel to connect. */
  private async connection(timeoutMs: number): Promise<ZtunnelConnection> {
    const conn = await this.waitFor(timeoutMs, () => this.newest);
    if (conn) return conn;
    throw new Error(`ztunnel on ${this.node} is not connected to ${this.socketPath} (waited ${timeoutMs / 1000}s)`);
  }

  /**
   * Waits until a ztunnel that connected after `afterCount` connections has acknowledged its whole snapshot (it
   * then listens in every captured pod) and is the newest connection. Rejects after `timeoutMs`.
   */
  async waitForSnapshot(afterCount: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const conn = await this.waitFor(Math.max(0, deadline - Date.now()), () => {
        const n = this.newest;
        return n && n.seq > afterCount ? n : undefined;
      });
      if (!conn) throw new Error(`no new ztunnel connected on ${this.node} within ${timeoutMs / 1000}s`);
      const ok = await this.synced.get(conn)!.then(
        () => true,
        () => false,
      );
      if (ok && !conn.closed) return;
      if (Date.now() >= deadline) throw new Error(`the new ztunnel on ${this.node} did not take its snapshot within ${timeoutMs / 1000}s`);
    }
  }

  private async replay(conn: ZtunnelConnection): Promise<void> {
    await conn.hello;
    const pods = [...this.workloads.values()];
    try {
      for (const w of pods) {
        const error = await conn.send({ add: w });
        if (error) this.log(`ZDS: ztunnel on ${this.node} refused pod ${w.workloadInfo.namespace}/${w.workloadInfo.name} in its snapshot: ${error}`);
      }
      await conn.send({ snapshotSent: {} });
      this.log(`ZDS: ztunnel on ${this.node} connected; snapshot of ${pods.length} pod(s) sent, total connected: ${this.conns.length}`);
    } catch (err) {
      this.log(`ZDS: snapshot to ztunnel on ${this.node} failed: ${(err as Error).message}`);
      throw err;
    }
  }

  /** True when `uid` is in the set handed to ztunnel. */
  has(uid: string): boolean {
    return this.workloads.has(uid);
  }

  /**
   * Hands a pod to ztunnel and waits for its ack, as Istio's CNI plugin blocks sandbox creation. Rejects when no
   * ztunnel is connected or it refuses the pod; the pod then stays out of the set.
   */
  async add(w: ZdsWorkload, connectWaitMs = ZDS_CONNECT_WAIT_MS): Promise<void> {
    const conn = await this.connection(connectWaitMs);
    await this.synced.get(conn)!.catch(() => undefined); // a failed snapshot fails this send too: conn is closed
    const error = await conn.send({ add: w });
    if (error) throw new Error(`ztunnel on ${this.node} refused the pod: ${error}`);
    this.workloads.set(w.uid, w);
  }

  /**
   * Takes a pod away from every connected ztunnel (an old one still draining may serve it too). Without a connection
   * the next snapshot leaves it out, so this never fails.
   */
  async del(uid: string): Promise<void> {
    if (!this.workloads.delete(uid)) return;
    await Promise.all(
      [...this.conns].map(async (conn) => {
        try {
          await this.synced.get(conn)!.catch(() => undefined);
          const error = await conn.send({ del: { uid } });
          if (error) this.log(`ZDS: ztunnel on ${this.node} answered del ${uid} with: ${error}`);
        } catch (err) {
          this.log(`ZDS: del ${uid} to ztunnel on ${this.node}: ${(err as Error).message}`);
        }
      }),
    );
  }
}
