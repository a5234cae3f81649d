// ambit-client against a real ambit-echo process on loopback: summaries, exit codes, TCP round trips, timeouts and
// the coordinated-omission-free latency of --qps runs.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { formatSummary, makePayload, percentile, runLoad, UsageError } from '../../examples/apps/client/load.js';
import { CLIENT_BIN, run, startEchoProcess, type EchoProcess } from './echo-process.js';

interface JsonSummary {
  requests: number;
  failed: number;
  counts: Record<string, number>;
  durationMs: number;
  rps: number;
  latencyMs?: { min: number; p50: number; p90: number; p99: number; max: number };
}

describe('ambit-client building blocks', () => {
  it('computes nearest-rank percentiles', () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(sorted, 50), 50);
    assert.equal(percentile(sorted, 90), 90);
    assert.equal(percentile(sorted, 99), 99);
    assert.equal(percentile(sorted, 100), 100);
    assert.equal(percentile(Float64Array.of(7), 99), 7);
  });

  it('makes position-dependent payloads', () => {
    const p = makePayload(40);
    assert.equal(p.toString(), 'abcdefghijklmnopqrstuvwxyz0123456789abcd');
  });

  it('formats counts and latency', () => {
    const text = formatSummary({
      target: 'http://x/', protocol: 'http', method: 'GET', concurrency: 2, requests: 3, failed: 1,
      counts: { '200': 2, '503': 1 }, durationMs: 1500, rps: 2,
      latencyMs: { min: 1, p50: 2, p90: 3, p99: 4, max: 5 },
    });
    assert.match(text, /results   200: 2  503: 1/);
    assert.match(text, /3 in 1\.500s, 2\.0 req\/s, 1 failed/);
    assert.match(text, /p50 2\.00ms/);
  });

  it('rejects bad options with a UsageError naming the value', async () => {
    await assert.rejects(runLoad({ target: 'udp://x:1', requests: 1, concurrency: 1, payloadBytes: 0, timeoutMs: 10 }),
      (e: unknown) => e instanceof UsageError && /unsupported target "udp:\/\/x:1"/.test(e.message));
    await assert.rejects(runLoad({ target: 'tcp://127.0.0.1', requests: 1, concurrency: 1, payloadBytes: 0, timeoutMs: 10 }),
      /a tcp:\/\/ target needs a host and a port/);
    await assert.rejects(runLoad({ target: 'http://x/', requests: 0, concurrency: 1, payloadBytes: 0, timeoutMs: 10 }),
      /invalid request count 0/);
  });
});

describe('ambit-client against ambit-echo', () => {
  let echo: EchoProcess;
  let base: string;
  before(async () => {
    echo = await startEchoProcess(['--no-access-log', '--grpc-port', '0']);
    base = `http://127.0.0.1:${echo.httpPort}`;
  });
  after(() => echo?.kill());

  it('runs N requests with concurrency and prints a summary, exit 0', async () => {
    const r = await run(CLIENT_BIN, [`${base}/`, '-n', '40', '-c', '4']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /target    GET http:\/\/127\.0\.0\.1:\d+\/ \(concurrency 4\)/);
    assert.match(r.stdout, /requests  40 in [\d.]+s, [\d.]+ req\/s, 0 failed/);
    assert.match(r.stdout, /results   200: 40\n/);
    assert.match(r.stdout, /latency   min \S+ms  p50 \S+ms  p90 \S+ms  p99 \S+ms  max \S+ms/);
  });

  it('prints a JSON summary with ordered percentiles', async () => {
    const r = await run(CLIENT_BIN, [`${base}/`, '-n', '30', '-c', '3', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as JsonSummary;
    assert.equal(s.requests, 30);
    assert.deepEqual(s.counts, { '200': 30 });
    const l = s.latencyMs!;
    assert.ok(l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, JSON.stringify(l));
  });

  it('counts HTTP error statuses as failures: exit 1, or 0 with --allow-errors', async () => {
    const failing = await run(CLIENT_BIN, [`${base}/status/503`, '-n', '5', '--json']);
    assert.equal(failing.code, 1);
    const s = JSON.parse(failing.stdout) as JsonSummary;
    assert.deepEqual(s.counts, { '503': 5 });
    assert.equal(s.failed, 5);
    const allowed = await run(CLIENT_BIN, [`${base}/status/503`, '-n', '5', '--allow-errors']);
    assert.equal(allowed.code, 0);
    assert.match(allowed.stdout, /503: 5/);
  });

  it('sends method, headers and payload, and prints the first body', async () => {
    const r = await run(CLIENT_BIN, [`${base}/pay`, '-X', 'put', '-H', 'X-Order: 42', '--payload', '10', '--print-body']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ServiceVersion=/);
    assert.match(r.stdout, /\nMethod=PUT\n/);
    assert.match(r.stdout, /\nRequestHeader=X-Order:42\n/);
    assert.match(r.stdout, /\nBody=abcdefghij\n/);
    assert.match(r.stdout, /results   200: 1/);
  });

  it('does TCP echo round trips over one connection per slot', async () => {
    const r = await run(CLIENT_BIN, [`tcp://127.0.0.1:${echo.tcpPort}`, '-n', '200', '-c', '3', '--payload', '5000', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as JsonSummary;
    assert.deepEqual(s.counts, { ok: 200 });
  });

  it('makes gRPC Echo calls and checks the echoed message', async () => {
    const r = await run(CLIENT_BIN, [`grpc://127.0.0.1:${echo.grpcPort}`, '-n', '50', '-c', '2', '--payload', '100',
      '-H', 'x-demo: 1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as JsonSummary;
    assert.deepEqual(s.counts, { OK: 50 });
    assert.ok(s.latencyMs);
  });

  it('times out slow requests and reports them', async () => {
    const r = await run(CLIENT_BIN, [`${base}/delay/3000`, '-n', '2', '--timeout', '150', '--json']);
    assert.equal(r.code, 1);
    const s = JSON.parse(r.stdout) as JsonSummary;
    assert.deepEqual(s.counts, { timeout: 2 });
    assert.equal(s.latencyMs, undefined);
  });

  it('paces requests with --qps and measures latency from the scheduled send time', async () => {
    // 10 requests due every 10ms, each served in ≥60ms by one slot: the slot falls behind schedule, and the queueing
    // must show up as latency (request 9 is due at 90ms but cannot finish before 600ms).
    const paced = await run(CLIENT_BIN, [`${base}/delay/60`, '-n', '10', '-c', '1', '--qps', '100', '--json']);
    assert.equal(paced.code, 0, paced.stderr);
    const p = JSON.parse(paced.stdout) as JsonSummary;
    assert.ok(p.latencyMs!.max >= 500, `max latency ${p.latencyMs!.max}ms should include time spent behind schedule`);
    // Without --qps the same load measures only service time.
    const unpaced = await run(CLIENT_BIN, [`${base}/delay/60`, '-n', '10', '-c', '1', '--json']);
    const u = JSON.parse(unpaced.stdout) as JsonSummary;
    assert.ok(u.latencyMs!.max < p.latencyMs!.max, `unpaced max ${u.latencyMs!.max}ms vs paced ${p.latencyMs!.max}ms`);

    // A rate the server easily sustains is not exceeded: 10 requests at 50/s take at least 9 intervals.
    const slow = await run(CLIENT_BIN, [`${base}/`, '-n', '10', '--qps', '50', '--json']);
    assert.ok((JSON.parse(slow.stdout) as JsonSummary).durationMs >= 175);
  });

  it('exits 2 on a bad command line', async () => {
    const r = await run(CLIENT_BIN, [`${base}/`, '-n', 'many']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /invalid -n "many": want a whole number/);
    const t = await run(CLIENT_BIN, ['gopher://x/']);
    assert.equal(t.code, 2);
    assert.match(t.stderr, /unsupported target "gopher:\/\/x\/"/);
  });
});

describe('ambit-client failure detection', () => {
  it('reports refused connections by error code, exit 1', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const r = await run(CLIENT_BIN, [`tcp://127.0.0.1:${port}`, '-n', '3', '--json']);
    assert.equal(r.code, 1);
    assert.deepEqual((JSON.parse(r.stdout) as JsonSummary).counts, { ECONNREFUSED: 3 });
    const h = await run(CLIENT_BIN, [`http://127.0.0.1:${port}/`, '-n', '2', '--json']);
    assert.equal(h.code, 1);
    assert.deepEqual((JSON.parse(h.stdout) as JsonSummary).counts, { ECONNREFUSED: 2 });
    const g = await run(CLIENT_BIN, [`grpc://127.0.0.1:${port}`, '-n', '2', '--json']);
    assert.equal(g.code, 1);
    assert.deepEqual((JSON.parse(g.stdout) as JsonSummary).counts, { UNAVAILABLE: 2 });
  });

  it('catches a TCP server that does not echo verbatim', async () => {
    // Answers every chunk with the same number of bytes, but upper-cased: right length, wrong content.
    const liar = net.createServer((s) => s.on('data', (c: Buffer) => s.write(c.toString('latin1').toUpperCase(), 'latin1')));
    await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
    try {
      const port = (liar.address() as net.AddressInfo).port;
      const r = await run(CLIENT_BIN, [`tcp://127.0.0.1:${port}`, '-n', '4', '--json']);
      assert.equal(r.code, 1);
      assert.deepEqual((JSON.parse(r.stdout) as JsonSummary).counts, { 'echo mismatch': 4 });
    } finally {
      liar.close();
    }
  });
});
