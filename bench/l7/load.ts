// The HTTP/1.1 loads of the L7 benchmark, run with ambit-client inside the client pod's network namespace (so its
// traffic is captured by the client node's ztunnel like an app's): keep-alive connections, one POST with a small body
// per request, either paced at a fixed rate (request i is due at start + i/rate and its latency counts from then: no
// coordinated omission) or as fast as the path answers with a fixed number of requests in flight.
import { fileURLToPath } from 'node:url';
import { runCommand } from '../l4/load.js';
import type { LatencyMs } from './report.js';

const AMBIT_CLIENT = fileURLToPath(new URL('../../../bin/ambit-client', import.meta.url));
const REQUEST_TIMEOUT_MS = 5000;

export interface HttpLoadResult {
  requests: number;
  failed: number;
  /** HTTP status or error code → count. */
  counts: Record<string, number>;
  durationMs: number;
  rps: number;
  latencyMs: LatencyMs;
}

interface ClientSummary {
  requests: number;
  failed: number;
  counts: Record<string, number>;
  durationMs: number;
  rps: number;
  latencyMs?: LatencyMs;
}

function clientArgv(url: string, extra: string[]): string[] {
  return [process.execPath, AMBIT_CLIENT, url, '--timeout', String(REQUEST_TIMEOUT_MS), '--json', '--allow-errors', ...extra];
}

/**
 * `requests` POSTs of `payload` bytes over `concurrency` keep-alive connections: at `qps` in total, or with `qps`
 * undefined as fast as the answers come back (each connection sends its next request when the last one is answered).
 */
export async function httpLoad(
  netns: string,
  url: string,
  o: { requests: number; concurrency: number; qps?: number; payload: number; cpus?: string; timeoutMs: number },
): Promise<HttpLoadResult> {
  const argv = clientArgv(url, ['-n', String(o.requests), '-c', String(o.concurrency), '--payload', String(o.payload),
    ...(o.qps ? ['--qps', String(o.qps)] : [])]);
  const out = await runCommand(netns, argv, { cpus: o.cpus, timeoutMs: o.timeoutMs });
  const s = JSON.parse(out) as ClientSummary;
  if (!s.latencyMs) throw new Error(`no request to ${url} was answered: ${JSON.stringify(s.counts)}`);
  const { p50, p90, p99 } = s.latencyMs;
  return { requests: s.requests, failed: s.failed, counts: s.counts, durationMs: s.durationMs, rps: s.rps, latencyMs: { p50, p90, p99 } };
}

/** One POST; the status ("200", or an error code) and the response body as the client received it. */
export async function probe(netns: string, url: string, payload: number): Promise<{ status: string; body: string }> {
  const out = await runCommand(netns, clientArgv(url, ['--payload', String(payload), '--print-body']), { timeoutMs: REQUEST_TIMEOUT_MS + 10_000 });
  // --print-body writes the body first, then the JSON summary on the last line.
  const cut = out.lastIndexOf('\n', out.length - 2);
  const s = JSON.parse(out.slice(cut + 1)) as ClientSummary;
  const status = Object.keys(s.counts)[0] ?? 'no answer';
  return { status, body: cut < 0 ? '' : out.slice(0, cut + 1) };
}
