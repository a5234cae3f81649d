// The three loads of the L4 benchmark, each run inside the client pod's network namespace (so an ambient pod's
// traffic is captured exactly like an app's): single-stream throughput (iperf3), paced 1 KB round trips (ambit-client
// --qps) and new connections per second (connrate.js, also used by the loopback benchmark bench/hbone.ts).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const AMBIT_CLIENT = fileURLToPath(new URL('../../../bin/ambit-client', import.meta.url));
const CONNRATE = fileURLToPath(new URL('./connrate.js', import.meta.url));

export interface RunOptions {
  /** CPU list for taskset, or undefined for no pinning. */
  cpus?: string;
  timeoutMs: number;
}

/**
 * Runs argv inside a network namespace (or, with `netnsPath` undefined, in this process's own, as the loopback
 * benchmark does) and resolves with its stdout; rejects with its exit status and stderr when it fails or outlives
 * `timeoutMs` (then its whole process group is killed).
 */
export function runCommand(netnsPath: string | undefined, argv: string[], o: RunOptions): Promise<string> {
  const full = [...(netnsPath ? ['nsenter', `--net=${netnsPath}`, '--'] : []), ...(o.cpus ? ['taskset', '--cpu-list', o.cpus] : []), ...argv];
  return new Promise((resolve, reject) => {
    const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, o.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${argv[0]}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(stdout);
      const why = timedOut ? `did not finish within ${o.timeoutMs} ms` : `exited with ${code ?? signal}`;
      const err = new Error(`${argv.slice(0, 2).join(' ')}${netnsPath ? ` in ${netnsPath}` : ''} ${why}: ${(stderr || stdout).trim().split('\n').slice(-5).join(' | ')}`);
      reject(timedOut ? err : Object.assign(err, { stdout }));
    });
  });
}

/** The iperf3 server still counts the previous test as running until it has seen that test's connections close. */
const IPERF_BUSY = /server is busy/;
const IPERF_BUSY_RETRIES = 10;

/** One iperf3 TCP stream for `seconds`; Gbit/s as received by the server. */
export async function throughputGbps(netns: string, host: string, port: number, seconds: number, cpus?: string): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    // iperf3 --json reports its own errors in the JSON and exits 1: read stdout either way.
    const out = await runCommand(netns, ['iperf3', '--client', host, '--port', String(port), '--time', String(seconds), '--parallel', '1', '--json'], {
      cpus,
      timeoutMs: seconds * 1000 + 20_000,
    }).catch((err: Error & { stdout?: string }) => err.stdout || Promise.reject(err));
    const report = JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
    if (report.error && IPERF_BUSY.test(report.error) && attempt < IPERF_BUSY_RETRIES) {
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    const bps = report.end?.sum_received?.bits_per_second;
    if (report.error || !(bps! > 0)) throw new Error(`iperf3 to ${host}:${port} failed: ${report.error ?? 'no bytes received'}`);
    return bps! / 1e9;
  }
}

export interface PacedResult {
  requests: number;
  failed: number;
  counts: Record<string, number>;
  latencyMs: { p50: number; p90: number; p99: number };
}

/**
 * `requests` round trips of `payload` bytes over `connections` TCP connections at `qps` in total. ambit-client
 * schedules request i at start + i/qps and measures from that time, so a stall counts as latency (no coordinated
 * omission).
 */
export async function pacedRoundTrips(
  netns: string,
  target: string,
  o: { qps: number; requests: number; connections: number; payload: number; cpus?: string },
): Promise<PacedResult> {
  const out = await runCommand(
    netns,
    [process.execPath, AMBIT_CLIENT, `tcp://${target}`, '-n', String(o.requests), '-c', String(o.connections), '--qps', String(o.qps),
      '--payload', String(o.payload), '--timeout', '5000', '--json', '--allow-errors'],
    { cpus: o.cpus, timeoutMs: (o.requests / o.qps) * 1000 + 30_000 },
  );
  const s = JSON.parse(out) as { requests: number; failed: number; counts: Record<string, number>; latencyMs?: PacedResult['latencyMs'] };
  if (!s.latencyMs) throw new Error(`no round trip to ${target} succeeded: ${JSON.stringify(s.counts)}`);
  const { p50, p90, p99 } = s.latencyMs;
  return { requests: s.requests, failed: s.failed, counts: s.counts, latencyMs: { p50, p90, p99 } };
}

export interface ConnRateResult {
  completed: number;
  failed: number;
  durationMs: number;
  perSecond: number;
  /** Connections completed in each second of the phase; the last second may be partial. */
  perSecondTimeline: number[];
  errors: Record<string, number>;
}

/** Connect, exchange `payload` bytes, close — as many times as possible over `concurrency` loops, bounded. */
export async function newConnections(
  netns: string | undefined,
  host: string,
  port: number,
  o: { payload: number; concurrency: number; durationMs: number; maxConnections: number; cpus?: string },
): Promise<ConnRateResult> {
  const out = await runCommand(
    netns,
    [process.execPath, CONNRATE, host, String(port), String(o.payload), String(o.concurrency), String(o.durationMs), String(o.maxConnections)],
    { cpus: o.cpus, timeoutMs: o.durationMs + 30_000 },
  );
  return JSON.parse(out) as ConnRateResult;
}
