// HBONE data-path benchmark on loopback:
//   load client -> TCP -> client proxy (HbonePool) => mTLS/HTTP2 CONNECT => HboneServer -> TCP -> sink / echo
// The load generator, the client proxy and the server side (HBONE server, sink, echo) are separate processes, as
// they would be on real nodes (3 processes share the 2 cores here). Reports single-stream throughput, 1 KiB
// request/response latency, each proxy's CPU per round trip, new connections per second (8 loops of connect, 1 KiB
// echoed, close; bench/l4/connrate.ts) and each proxy's CPU per new connection, with Node's default HTTP/2 windows
// and with the HBONE tuning. Two reference relays without HTTP/2 show what the layers under it cost in Node alone:
// `tls-relay` (one mTLS connection per client connection, bytes copied as they come) and `tcp-relay` (plain TCP on
// both legs).
//
//   npm run bench:hbone [-- --modes tuned,tcp-relay --seconds 3 --rounds 3000 --conn-seconds 2 --quick --json FILE
//                          --profile DIR]
// --modes: default all of direct, default, tuned, tls-relay, tcp-relay. --quick: 1 s of bulk, 1000 rounds, 1 s of
// new connections. --json FILE writes {"hbone": {MODE: {bulk_gbps, round_trips_per_s, p50_us, p99_us,
// client_cpu_us_per_round_trip, server_cpu_us_per_round_trip, new_conn_per_s, client_cpu_us_per_new_conn,
// server_cpu_us_per_new_conn}}} (CPU as user + system; the client figures are null for direct, which has no client
// proxy). The tls-relay mode makes a TLS handshake per new connection, which HBONE's pooled sessions do not.
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createRootCA, issueWorkloadCertificate } from '../src/identity/certs.js';
import { WorkloadCertificate } from '../src/identity/workload-cert.js';
import { copyBidirectional } from '../src/hbone/copy.js';
import { HbonePool } from '../src/hbone/pool.js';
import { HboneServer } from '../src/hbone/server.js';
import { HBONE_TUNING, NODE_DEFAULT_TUNING, type Http2Tuning } from '../src/hbone/session.js';
import { clientTlsOptions, serverTlsOptions } from '../src/hbone/tls.js';

const CONNRATE = fileURLToPath(new URL('./l4/connrate.js', import.meta.url));
const CONNRATE_LOOPS = 8;
// The client closes first, so each connection leaves a TIME_WAIT entry on one of its ~28,000 ephemeral ports.
const CONNRATE_MAX = 5000;

const MODES = ['direct', 'default', 'tuned', 'tls-relay', 'tcp-relay'] as const;
type Mode = (typeof MODES)[number];

const SERVER_ID = 'spiffe://cluster.local/ns/bench/sa/server';
const CLIENT_ID = 'spiffe://cluster.local/ns/bench/sa/client';

interface CertMsg {
  keyPem: string;
  chainPem: string[];
  rootPems: string[];
}
interface ServerReady {
  hbonePort: number;
  sinkPort: number;
  echoPort: number;
  /** The reference relays' server side, one listener per target (they carry no CONNECT to name it). */
  relaySinkPort: number;
  relayEchoPort: number;
}

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

// ---- child: HBONE server, sink and echo ----
// Answers the parent's CPU queries: user and system microseconds this process has used so far.
function serveCpuQueries(): void {
  process.on('message', (m) => {
    if (m === 'cpu') process.send!({ cpu: process.cpuUsage() });
  });
}

/** The server half of a reference relay: accepts plain TCP or mTLS and copies to `targetPort`. */
function relayServer(mode: Mode, cert: WorkloadCertificate, targetPort: number): Promise<number> {
  const relay = (down: net.Socket) => {
    const up = net.connect({ host: '127.0.0.1', port: targetPort, noDelay: true });
    void copyBidirectional(down, up);
  };
  if (mode === 'tls-relay') {
    const server = tls.createServer({ ...serverTlsOptions(cert, 10_000), allowHalfOpen: true }, relay);
    return listen(server);
  }
  return listen(net.createServer({ allowHalfOpen: true, noDelay: true }, relay));
}

async function serverSide(cert: CertMsg, tuning: Http2Tuning, mode: Mode): Promise<void> {
  serveCpuQueries();
  const wc = WorkloadCertificate.fromPem(cert);
  // Sink: counts bytes; when the client half-closes, answers with the count.
  const sink = net.createServer({ allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('end', () => s.end(String(n)));
    s.on('error', () => {});
  });
  const echo = net.createServer((s) => {
    s.setNoDelay(true);
    s.pipe(s);
    s.on('error', () => {});
  });
  const server = new HboneServer({
    certificateFor: () => wc,
    tuning,
    onConnect: (req) =>
      new Promise((resolve) => {
        const up = net.connect({ host: '127.0.0.1', port: req.target.port, noDelay: true });
        up.once('connect', () => resolve({ status: 200, upstream: up }));
        up.once('error', (e) => resolve({ status: 503, error: `connection failed: ${e.message}` }));
      }),
  });
  const ready: ServerReady = {
    hbonePort: (await server.listen(0, '127.0.0.1')).port,
    sinkPort: await listen(sink),
    echoPort: await listen(echo),
    relaySinkPort: 0,
    relayEchoPort: 0,
  };
  if (mode === 'tls-relay' || mode === 'tcp-relay') {
    ready.relaySinkPort = await relayServer(mode, wc, ready.sinkPort);
    ready.relayEchoPort = await relayServer(mode, wc, ready.echoPort);
  }
  process.send!(ready);
}

// ---- parent: client proxy and load ----
/** The client half of a reference relay: each accepted connection gets its own plain TCP or mTLS connection. */
async function relayClient(mode: Mode, cert: WorkloadCertificate, relayPort: number): Promise<net.Server> {
  const proxy = net.createServer({ allowHalfOpen: true, noDelay: true }, (down) => {
    const up =
      mode === 'tls-relay'
        ? tls.connect({ host: '127.0.0.1', port: relayPort, ...clientTlsOptions(cert, [SERVER_ID]) })
        : net.connect({ host: '127.0.0.1', port: relayPort });
    up.setNoDelay(true);
    void copyBidirectional(down, up);
  });
  await listen(proxy);
  return proxy;
}

async function clientProxy(pool: HbonePool, cert: WorkloadCertificate, hbonePort: number, targetPort: number): Promise<net.Server> {
  const proxy = net.createServer({ allowHalfOpen: true, noDelay: true }, (down) => {
    pool
      .connect({
        destination: { address: '127.0.0.1', port: hbonePort },
        certificate: cert,
        expectedIdentities: [SERVER_ID],
        target: { address: '127.0.0.1', port: targetPort },
        forwardedFor: { address: down.remoteAddress!, port: down.remotePort! },
      })
      .then(
        (stream) => copyBidirectional(down, stream),
        () => down.destroy(),
      );
  });
  await listen(proxy);
  return proxy;
}

async function throughput(port: number, seconds: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true, noDelay: true });
  await new Promise((r) => sock.once('connect', r));
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const reply = new Promise<string>((resolve) => {
    let s = '';
    sock.on('data', (c: Buffer) => (s += c.toString()));
    sock.on('end', () => resolve(s));
  });
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (performance.now() < deadline) {
        if (!sock.write(chunk)) return void sock.once('drain', pump);
      }
      sock.end();
      resolve();
    };
    pump();
  });
  const bytes = Number(await reply);
  const elapsed = (performance.now() - start) / 1000;
  sock.destroy();
  return (bytes * 8) / elapsed / 1e9;
}

async function latency(port: number, rounds: number): Promise<{ rps: number; p50: number; p99: number }> {
  const msg = Buffer.alloc(1024, 0x62);
  const sock = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await new Promise((r) => sock.once('connect', r));
  const samples: number[] = [];
  let got = 0;
  let t0 = 0;
  const warmup = Math.min(200, rounds / 10);
  const start = performance.now();
  await new Promise<void>((resolve) => {
    let i = 0;
    const send = () => {
      t0 = performance.now();
      sock.write(msg);
    };
    sock.on('data', (c: Buffer) => {
      got += c.length;
      if (got < msg.length) return;
      got -= msg.length;
      if (i >= warmup) samples.push(performance.now() - t0);
      if (++i === rounds) return resolve();
      send();
    });
    send();
  });
  const total = (performance.now() - start) / 1000;
  sock.destroy();
  samples.sort((a, b) => a - b);
  const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!;
  return { rps: rounds / total, p50: q(0.5) * 1000, p99: q(0.99) * 1000 };
}

/** New connections per second through `port`: CONNRATE_LOOPS loops of connect, 1 KiB echoed, close. */
async function newConnections(port: number, durationMs: number): Promise<{ completed: number; perSecond: number; failed: number }> {
  const args = [CONNRATE, '127.0.0.1', String(port), '1024', String(CONNRATE_LOOPS), String(durationMs), String(CONNRATE_MAX)];
  const { stdout } = await promisify(execFile)(process.execPath, args, { timeout: durationMs + 30_000 });
  return JSON.parse(stdout) as { completed: number; perSecond: number; failed: number };
}

interface ClientReady {
  sinkPort: number;
  echoPort: number;
}

async function clientSide(msg: { cert: CertMsg; ready: ServerReady }, tuning: Http2Tuning, mode: Mode): Promise<void> {
  serveCpuQueries();
  const cert = WorkloadCertificate.fromPem(msg.cert);
  let sink: net.Server;
  let echo: net.Server;
  if (mode === 'tls-relay' || mode === 'tcp-relay') {
    sink = await relayClient(mode, cert, msg.ready.relaySinkPort);
    echo = await relayClient(mode, cert, msg.ready.relayEchoPort);
  } else {
    const pool = new HbonePool({ tuning });
    sink = await clientProxy(pool, cert, msg.ready.hbonePort, msg.ready.sinkPort);
    echo = await clientProxy(pool, cert, msg.ready.hbonePort, msg.ready.echoPort);
  }
  const ready: ClientReady = {
    sinkPort: (sink.address() as net.AddressInfo).port,
    echoPort: (echo.address() as net.AddressInfo).port,
  };
  process.send!(ready);
}

function textArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/** CPU microseconds the child has used so far. */
function cpuOf(child: ChildProcess): Promise<NodeJS.CpuUsage> {
  return new Promise((resolve) => {
    const onMessage = (m: unknown) => {
      const cpu = (m as { cpu?: NodeJS.CpuUsage }).cpu;
      if (!cpu) return;
      child.off('message', onMessage);
      resolve(cpu);
    };
    child.on('message', onMessage);
    child.send('cpu');
  });
}

async function startChild<T>(role: 'server' | 'client', mode: Mode, msg: unknown): Promise<{ child: ChildProcess; ready: T }> {
  const profileDir = textArg('profile');
  // --profile DIR: V8 CPU profiles of the proxies (written when they exit), for bench/profile-top.ts.
  const execArgv = profileDir ? [...process.execArgv, '--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${mode}-${role}.cpuprofile`] : process.execArgv;
  const child = fork(fileURLToPath(import.meta.url), [`--${role}`, mode], { stdio: 'inherit', execArgv });
  child.send(msg as object);
  const ready = await new Promise<T>((resolve, reject) => {
    child.once('message', (m) => resolve(m as T));
    child.once('exit', (code) => reject(new Error(`bench ${role} exited with ${code}`)));
  });
  return { child, ready };
}

interface ModeResult {
  bulk_gbps: number;
  round_trips_per_s: number;
  p50_us: number;
  p99_us: number;
  client_cpu_us_per_round_trip: number | null;
  server_cpu_us_per_round_trip: number;
  new_conn_per_s: number;
  client_cpu_us_per_new_conn: number | null;
  server_cpu_us_per_new_conn: number;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const seconds = arg('seconds', quick ? 1 : 3);
  const rounds = arg('rounds', quick ? 1000 : 3000);
  const modes = (textArg('modes') ?? MODES.join(',')).split(',');
  const unknown = modes.filter((m) => !(MODES as readonly string[]).includes(m));
  if (unknown.length > 0) throw new Error(`unknown mode ${unknown.join(', ')}; modes are ${MODES.join(', ')}`);
  const ca = await createRootCA({ trustDomain: 'cluster.local', ttlSeconds: 3600 });
  const serverCert = await issueWorkloadCertificate(ca, SERVER_ID, 3600);
  const clientCert = await issueWorkloadCertificate(ca, CLIENT_ID, 3600);
  const connMs = arg('conn-seconds', quick ? 1 : 2) * 1000;
  console.log(
    `HBONE loopback benchmark (Node ${process.version}, ${seconds}s bulk, ${rounds} x 1 KiB ping-pong, ${connMs / 1000}s of new connections over ${CONNRATE_LOOPS} loops)`,
  );
  console.log('CPU is user + system µs (user alone in brackets), per round trip and per new connection; the server side includes the echo application.');
  console.log('mode      | bulk Gbit/s | 1KiB rps | p50 µs  | p99 µs  | client proxy CPU/round trip | server side CPU/round trip | new conn/s | client proxy CPU/conn | server side CPU/conn');
  const results: Partial<Record<Mode, ModeResult>> = {};
  for (const mode of MODES.filter((m) => modes.includes(m))) {
    const pem = (c: WorkloadCertificate): CertMsg => ({ keyPem: c.keyPem, chainPem: c.chainPem, rootPems: c.rootPems });
    const server = await startChild<ServerReady>('server', mode, pem(serverCert));
    const children = [server.child];
    let ports: ClientReady = server.ready;
    if (mode !== 'direct') {
      const client = await startChild<ClientReady>('client', mode, { cert: pem(clientCert), ready: server.ready });
      children.push(client.child);
      ports = client.ready;
    }
    const gbps = await throughput(ports.sinkPort, seconds);
    const cpuPer = async <T>(measure: () => Promise<T>, count: (r: T) => number) => {
      const before = await Promise.all(children.map(cpuOf));
      const result = await measure();
      const after = await Promise.all(children.map(cpuOf));
      const n = Math.max(1, count(result));
      const perUnit = children.map((_, i) => ({
        user: (after[i]!.user - before[i]!.user) / n,
        total: (after[i]!.user - before[i]!.user + after[i]!.system - before[i]!.system) / n,
      }));
      // children[0] is the server side, children[1] (absent for direct) the client proxy.
      return { result, server: perUnit[0]!, client: perUnit[1] };
    };
    const lat = await cpuPer(() => latency(ports.echoPort, rounds), () => rounds);
    const conns = await cpuPer(() => newConnections(ports.echoPort, connMs), (r) => r.completed);
    if (conns.result.failed > 0) console.log(`${mode}: ${conns.result.failed} new connections failed`);
    const cell = (c: { total: number; user: number } | undefined, width: number) =>
      (c ? `${c.total.toFixed(0)} (${c.user.toFixed(0)})` : '—').padStart(width);
    console.log(
      [
        mode.padEnd(9),
        gbps.toFixed(2).padStart(11),
        lat.result.rps.toFixed(0).padStart(8),
        lat.result.p50.toFixed(0).padStart(7),
        lat.result.p99.toFixed(0).padStart(7),
        cell(lat.client, 27),
        cell(lat.server, 26),
        conns.result.perSecond.toFixed(0).padStart(10),
        cell(conns.client, 21),
        cell(conns.server, 20),
      ].join(' | '),
    );
    results[mode] = {
      bulk_gbps: gbps,
      round_trips_per_s: lat.result.rps,
      p50_us: lat.result.p50,
      p99_us: lat.result.p99,
      client_cpu_us_per_round_trip: lat.client?.total ?? null,
      server_cpu_us_per_round_trip: lat.server.total,
      new_conn_per_s: conns.result.perSecond,
      client_cpu_us_per_new_conn: conns.client?.total ?? null,
      server_cpu_us_per_new_conn: conns.server.total,
    };
    await Promise.all(children.map((c) => new Promise((r) => (c.once('exit', r), c.kill()))));
  }
  const jsonFile = textArg('json');
  if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify({ hbone: results }, null, 2)}\n`);
}

const role = process.argv.includes('--server') ? 'server' : process.argv.includes('--client') ? 'client' : undefined;
if (role) {
  // A clean exit on kill, so that --cpu-prof gets to write its profile.
  process.once('SIGTERM', () => process.exit(0));
  const mode = process.argv[process.argv.indexOf(`--${role}`) + 1] as Mode;
  const tuning = mode === 'default' ? NODE_DEFAULT_TUNING : HBONE_TUNING;
  process.once('message', (m) =>
    void (role === 'server' ? serverSide(m as CertMsg, tuning, mode) : clientSide(m as { cert: CertMsg; ready: ServerReady }, tuning, mode)),
  );
} else {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
