// New-connection load generator of the L4 benchmark, run inside the client pod's network namespace:
//   node connrate.js HOST PORT PAYLOAD_BYTES CONCURRENCY DURATION_MS MAX_CONNECTIONS
// Each of CONCURRENCY loops connects, sends PAYLOAD_BYTES, waits for all of them to be echoed, closes and starts
// over, until DURATION_MS has passed or MAX_CONNECTIONS were started. Prints one JSON line:
// {"completed","failed","durationMs","perSecond","perSecondTimeline":[completed in each second; the last one may be
// partial],"errors":{code: count}}.
//
// The count bound keeps the client from running out of ephemeral ports: the client closes first, so every
// connection leaves a TIME_WAIT entry behind for a minute.
import net from 'node:net';
import { performance } from 'node:perf_hooks';

const [host, portText, payloadText, concurrencyText, durationText, maxText] = process.argv.slice(2);
const port = Number(portText);
const payload = Buffer.alloc(Number(payloadText), 'x');
const concurrency = Number(concurrencyText);
const durationMs = Number(durationText);
const maxConnections = Number(maxText);
if (!host || !(port > 0) || !(payload.length > 0) || !(concurrency > 0) || !(durationMs > 0) || !(maxConnections > 0)) {
  process.stderr.write('usage: connrate HOST PORT PAYLOAD_BYTES CONCURRENCY DURATION_MS MAX_CONNECTIONS\n');
  process.exit(2);
}

const PER_CONNECTION_TIMEOUT_MS = 5000;
let started = 0;
let completed = 0;
let failed = 0;
const errors: Record<string, number> = {};
/** Connections completed in each second of the run: shows whether the rate holds up as TIME_WAIT and conntrack fill. */
const timeline: number[] = [];

function oneConnection(): Promise<void> {
  return new Promise((resolve) => {
    let received = 0;
    let done = false;
    const finish = (error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) {
        failed++;
        errors[error] = (errors[error] ?? 0) + 1;
        socket.destroy();
      } else {
        completed++;
        const second = Math.floor((performance.now() - start) / 1000);
        timeline[second] = (timeline[second] ?? 0) + 1;
      }
      resolve();
    };
    const socket = net.connect({ host, port, noDelay: true }, () => socket.write(payload));
    const timer = setTimeout(() => finish('timeout'), PER_CONNECTION_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      // The exchange is complete: close our side and count the connection once the peer has closed too.
      if (received >= payload.length) socket.end();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
    socket.on('close', () => finish(received >= payload.length ? undefined : 'closed before the echo'));
  });
}

const start = performance.now();
const deadline = start + durationMs;
async function loop(): Promise<void> {
  while (performance.now() < deadline && started < maxConnections) {
    started++;
    await oneConnection();
  }
}
await Promise.all(Array.from({ length: concurrency }, loop));
const elapsed = performance.now() - start;
const perSecondTimeline = Array.from({ length: Math.ceil(elapsed / 1000) }, (_, i) => timeline[i] ?? 0);
process.stdout.write(JSON.stringify({ completed, failed, durationMs: elapsed, perSecond: (completed * 1000) / elapsed, perSecondTimeline, errors }) + '\n');
