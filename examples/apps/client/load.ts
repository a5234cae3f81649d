// ambit-client's engine: N requests over C concurrent slots against an HTTP URL (keep-alive agent, one socket per
// slot), a TCP echo port (one connection per slot, one payload round trip per request) or a gRPC echo (one HTTP/2
// connection per slot, one unary call per request), then a summary.
//
// With a target rate (qps) request i is due at start + i/qps and its latency is measured from that due time, not
// from when a slot got round to sending it: a stalled server then shows up as latency instead of silently lowering
// the offered load (coordinated omission).
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface LoadOptions {
  /** http://host[:port]/path, tcp://host:port or grpc://host:port */
  target: string;
  requests: number;
  concurrency: number;
  /** Total requests per second across all slots; undefined = as fast as possible. */
  qps?: number;
  /** Request body size (HTTP), round-trip payload size (TCP, at least 1) or Echo message size (gRPC). */
  payloadBytes: number;
  timeoutMs: number;
  /** HTTP only. */
  method?: string;
  /** HTTP headers or gRPC metadata. */
  headers?: [string, string][];
  /** HTTP only: keep the body of the first response (for `--print-body`). */
  captureFirstBody?: boolean;
}

export interface LatencySummary {
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface LoadSummary {
  target: string;
  protocol: Protocol;
  method?: string;
  concurrency: number;
  qps?: number;
  requests: number;
  failed: number;
  /**
   * Outcome → count. HTTP: status code ("200"); TCP: "ok"; gRPC: status name ("OK", "UNAVAILABLE"); other failures:
   * error code ("ECONNREFUSED", "timeout", "echo mismatch").
   */
  counts: Record<string, number>;
  durationMs: number;
  rps: number;
  /** Over requests that got an answer (any HTTP status, a complete TCP echo, a gRPC reply); undefined if none. */
  latencyMs?: LatencySummary;
  firstBody?: string;
}

export type Protocol = 'http' | 'tcp' | 'grpc';

export interface Outcome {
  key: string;
  ok: boolean;
  /** Whether a latency sample is meaningful (an answer arrived). */
  answered: boolean;
}

export interface Slot {
  run(): Promise<Outcome>;
  close(): void;
}

export class UsageError extends Error {}

/** Raises UsageError for anything a user typed wrong. */
export function validateOptions(o: LoadOptions): void {
  const positiveInt = (name: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`invalid ${name} ${v}: want a whole number ≥ 1`);
  };
  positiveInt('request count', o.requests);
  positiveInt('concurrency', o.concurrency);
  positiveInt('timeout', o.timeoutMs);
  if (!Number.isInteger(o.payloadBytes) || o.payloadBytes < 0) {
    throw new UsageError(`invalid payload size ${o.payloadBytes}: want a whole number of bytes ≥ 0`);
  }
  if (o.qps !== undefined && !(o.qps > 0 && Number.isFinite(o.qps))) {
    throw new UsageError(`invalid qps ${o.qps}: want a number > 0`);
  }
  parseTarget(o.target);
}

const TARGET_FORMS = 'http://HOST[:PORT]/PATH, tcp://HOST:PORT or grpc://HOST:PORT';

function parseTarget(target: string): URL {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new UsageError(`invalid target "${target}": want ${TARGET_FORMS}`);
  }
  if ((url.protocol === 'tcp:' || url.protocol === 'grpc:') && (!url.hostname || !url.port)) {
    throw new UsageError(`invalid target "${target}": a ${url.protocol}// target needs a host and a port`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'tcp:' && url.protocol !== 'grpc:') {
    throw new UsageError(`unsupported target "${target}": want ${TARGET_FORMS}`);
  }
  return url;
}

/** Printable, position-dependent bytes, so a TCP echo that reorders or drops data is caught. */
export function makePayload(bytes: number): Buffer {
  const pattern = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const buf = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) buf[i] = pattern.charCodeAt(i % pattern.length);
  return buf;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export async function runLoad(o: LoadOptions): Promise<LoadSummary> {
  validateOptions(o);
  const url = parseTarget(o.target);
  const protocol = url.protocol.slice(0, -1) as Protocol;
  const concurrency = Math.min(o.concurrency, o.requests);
  const payload = makePayload(protocol === 'tcp' ? Math.max(1, o.payloadBytes) : o.payloadBytes);
  const method = protocol === 'http' ? (o.method ?? (payload.length > 0 ? 'POST' : 'GET')).toUpperCase() : undefined;
  const summary: LoadSummary = {
    target: o.target,
    protocol,
    method,
    concurrency,
    qps: o.qps,
    requests: 0,
    failed: 0,
    counts: {},
    durationMs: 0,
    rps: 0,
  };

  const agent = protocol === 'http' ? new http.Agent({ keepAlive: true, maxSockets: concurrency }) : undefined;
  // grpc-js is loaded only when a gRPC target needs it.
  const grpc = protocol === 'grpc' ? await import('./grpc-slot.js') : undefined;
  const slots: Slot[] = [];
  for (let i = 0; i < concurrency; i++) {
    if (protocol === 'tcp') {
      slots.push(new TcpSlot(url.hostname, Number(url.port), payload, o.timeoutMs));
    } else if (grpc) {
      slots.push(new grpc.GrpcSlot(url.host, payload.toString('latin1'), o.headers ?? [], o.timeoutMs));
    } else {
      slots.push(new HttpSlot(url, agent!, method!, o.headers ?? [], payload, o.timeoutMs,
        o.captureFirstBody && i === 0 ? (body) => { summary.firstBody ??= body; } : undefined));
    }
  }

  const latencies = new Float64Array(o.requests);
  let answered = 0;
  let next = 0;
  const intervalMs = o.qps ? 1000 / o.qps : 0;
  const start = performance.now();
  const drive = async (slot: Slot): Promise<void> => {
    for (let i = next++; i < o.requests; i = next++) {
      let t0: number;
      if (intervalMs > 0) {
        t0 = start + i * intervalMs;
        // Timers run on the event loop's millisecond clock and can fire a fraction of a millisecond early; sending
        // before the due time would report latencies below the real ones (even negative).
        for (let wait = t0 - performance.now(); wait > 0; wait = t0 - performance.now()) await sleep(wait);
      } else {
        t0 = performance.now();
      }
      const outcome = await slot.run();
      const t1 = performance.now();
      summary.counts[outcome.key] = (summary.counts[outcome.key] ?? 0) + 1;
      summary.requests++;
      if (!outcome.ok) summary.failed++;
      if (outcome.answered) latencies[answered++] = t1 - t0;
    }
  };
  try {
    await Promise.all(slots.map(drive));
    summary.durationMs = performance.now() - start;
  } finally {
    for (const s of slots) s.close();
    agent?.destroy();
  }
  summary.rps = summary.requests / (summary.durationMs / 1000);
  if (answered > 0) {
    const sorted = latencies.subarray(0, answered).sort();
    summary.latencyMs = {
      min: sorted[0]!,
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: sorted[answered - 1]!,
    };
  }
  return summary;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorKey(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ?? e?.message ?? String(err);
}

const TIMEOUT = 'timeout';

class HttpSlot implements Slot {
  private readonly requestOptions: http.RequestOptions;

  constructor(
    private readonly url: URL,
    agent: http.Agent,
    method: string,
    headers: [string, string][],
    private readonly payload: Buffer,
    private readonly timeoutMs: number,
    private captureBody: ((body: string) => void) | undefined,
  ) {
    const h: http.OutgoingHttpHeaders = {};
    for (const [k, v] of headers) h[k] = v;
    if (payload.length > 0) h['content-length'] = String(payload.length);
    // The options object is reused by every request of this slot.
    this.requestOptions = { agent, method, headers: h };
  }

  run(): Promise<Outcome> {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (o: Outcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(o);
      };
      const req = http.request(this.url, this.requestOptions, (res) => {
        const status = res.statusCode ?? 0;
        const capture = this.captureBody;
        if (capture) {
          this.captureBody = undefined;
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => capture(Buffer.concat(chunks).toString('utf8')));
        } else {
          res.resume();
        }
        res.on('end', () => settle({ key: String(status), ok: status < 400, answered: true }));
        res.on('error', (err) => settle({ key: errorKey(err), ok: false, answered: false }));
      });
      const timer = setTimeout(() => {
        settle({ key: TIMEOUT, ok: false, answered: false });
        req.destroy();
      }, this.timeoutMs);
      req.on('error', (err) => settle({ key: errorKey(err), ok: false, answered: false }));
      req.end(this.payload.length > 0 ? this.payload : undefined);
    });
  }

  close(): void {
    // Sockets belong to the shared agent, destroyed by runLoad.
  }
}

class TcpSlot implements Slot {
  private socket: net.Socket | undefined;
  private received = 0;
  private pending: ((o: Outcome) => void) | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly payload: Buffer,
    private readonly timeoutMs: number,
  ) {}

  run(): Promise<Outcome> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.fail(TIMEOUT), this.timeoutMs);
      this.pending = (o) => {
        clearTimeout(timer);
        this.pending = undefined;
        resolve(o);
      };
      this.received = 0;
      const socket = this.socket ?? this.connect();
      socket.write(this.payload);
    });
  }

  private connect(): net.Socket {
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      if (socket !== this.socket) return;
      const end = this.received + chunk.length;
      // Compare in place against the expected slice: no copy per chunk.
      if (!this.pending || end > this.payload.length ||
          this.payload.compare(chunk, 0, chunk.length, this.received, end) !== 0) {
        this.fail('echo mismatch');
        return;
      }
      this.received = end;
      if (end === this.payload.length) this.pending({ key: 'ok', ok: true, answered: true });
    });
    // Events of a connection already given up on must not touch its replacement.
    socket.on('error', (err) => { if (socket === this.socket) this.fail(errorKey(err)); });
    // The server closing (or half-closing) mid-round-trip is a failure of that round trip.
    socket.on('end', () => { if (socket === this.socket) this.fail('closed by peer'); });
    socket.on('close', () => { if (socket === this.socket) this.fail('closed by peer'); });
    return socket;
  }

  /** Fails the round trip in flight (if any) and drops the connection; the next round trip reconnects. */
  private fail(key: string): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
    this.pending?.({ key, ok: false, answered: false });
  }

  close(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
  }
}

const ms = (v: number): string => (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)) + 'ms';

export function formatSummary(s: LoadSummary): string {
  const what = s.protocol === 'http' ? `${s.method} ` : '';
  const rate = s.qps ? `, target ${s.qps} req/s` : '';
  const counts = Object.entries(s.counts)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k}: ${n}`)
    .join('  ');
  const lines = [
    `target    ${what}${s.target} (concurrency ${s.concurrency}${rate})`,
    `requests  ${s.requests} in ${(s.durationMs / 1000).toFixed(3)}s, ${s.rps.toFixed(1)} req/s, ${s.failed} failed`,
    `results   ${counts || '-'}`,
  ];
  const l = s.latencyMs;
  lines.push(l
    ? `latency   min ${ms(l.min)}  p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  max ${ms(l.max)}`
    : 'latency   - (no answers)');
  return lines.join('\n') + '\n';
}
