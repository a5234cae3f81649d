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
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createRootCA, issueWorkloadCertificate } from '../src/identity/certs.js';
import { WorkloadCertificate } from '../src/identity/workload-cert.js';
import { copyBidirectional } from '../src/hbone/copy.js';
import { HbonePool } from '../src/hbone/pool.js';
import { HboneServer } from '../src/hbone/server.js';
import { HBONE_TUNING, NODE_DEFAULT_TUNING, type Http2Tuning } from '../src/hbone/session.js';
import { clientTlsOptions, serverTlsOptions } from '../src/hbone/tls.js';
import { newConnections } from './l4/load.js';

/**
 * The new-connections load: 8 loops of connect, 1 KiB echoed, close, after an unmeasured warm-up (so V8 has compiled
 * the connection path, as in the L4 benchmark). The client closes first, so every connection leaves a TIME_WAIT
 * entry on one of its ~28,000 ephemeral ports: the counts bound both phases well below that.
 */
const CONN_LOAD = { payload: 1024, concurrency: 8, maxConnections: 5000 };
const CONN_WARMUP = { ...CONN_LOAD, durationMs: 500, maxConnections: 500 };

const MODES = ['direct', 'default', 'tuned', 'tls-relay', 'tcp-relay'] as const;
type Mode = (typeof MODES)[number];
type RelayMode = Extract<Mode, 'tls-relay' | 'tcp-relay'>;

function isRelay(mode: Mode): mode is RelayMode {
  return mode === 'tls-relay' || mode === 'tcp-relay';
}

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

// ---- both children ----
/** Answers the parent's CPU queries with the user and system microseconds this process has used so far. */
function serveCpuQueries(): void {
  process.on('message', (m) => {
    if (m === 'cpu') process.send!({ cpu: process.cpuUsage() });
  });
}

// ---- child: HBONE server, relay server, sink and echo ----

/**
 * The server half of a reference relay: accepts plain TCP or mTLS and copies to `targetPort`. The mTLS listener uses
 * HBONE's TLS settings (so it also negotiates the h2 ALPN, though it carries raw bytes) and, like the HBONE server,
 * refuses a client whose certificate does not verify.
 */
function relayServer(mode: RelayMode, cert: WorkloadCertificate, targetPort: number): Promise<number> {
  const relay = (down: net.Socket) => {
    if (down instanceof tls.TLSSocket && !down.authorized) return void down.destroy();
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
  if (isRelay(mode)) {
    ready.relaySinkPort = await relayServer(mode, wc, ready.sinkPort);
    ready.relayEchoPort = await relayServer(mode, wc, ready.echoPort);
  }
  process.send!(ready);
}

// ---- child: client proxy ----
/** The client half of a reference relay: each accepted connection gets its own plain TCP or mTLS connection. */
async function relayClient(mode: RelayMode, cert: WorkloadCertificate, relayPort: number): Promise<net.Server> {
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

interface ClientReady {
  sinkPort: number;
  echoPort: number;
}

async function clientSide(msg: { cert: CertMsg; ready: ServerReady }, tuning: Http2Tuning, mode: Mode): Promise<void> {
  serveCpuQueries();
  const cert = WorkloadCertificate.fromPem(msg.cert);
  let sink: net.Server;
  let echo: net.Server;
  if (isRelay(mode)) {
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

// ---- parent: load and report ----
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

/**
 * 1 KiB ping-pong over one connection. `onMeasured` runs once the warm-up rounds are done, before the first measured
 * round (the CPU snapshot: a connection set-up, a TLS handshake for tls-relay, must not count).
 */
async function latency(
  port: number,
  rounds: number,
  onMeasured: () => Promise<void>,
): Promise<{ rps: number; p50: number; p99: number; measuredRounds: number }> {
  const msg = Buffer.alloc(1024, 0x62);
  const sock = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await new Promise((r) => sock.once('connect', r));
  const samples: number[] = [];
  let got = 0;
  let t0 = 0;
  const warmup = Math.floor(Math.min(200, rounds / 10));
  let start = 0;
  await new Promise<void>((resolve, reject) => {
    let i = 0;
    const send = () => {
      t0 = performance.now();
      sock.write(msg);
    };
    const measureFrom = () =>
      onMeasured().then(() => {
        start = performance.now();
        send();
      }, reject);
    sock.on('data', (c: Buffer) => {
      got += c.length;
      if (got < msg.length) return;
      got -= msg.length;
      if (i >= warmup) samples.push(performance.now() - t0);
      if (++i === rounds) return resolve();
      if (i === warmup) return void measureFrom();
      send();
    });
    if (warmup === 0) void measureFrom();
    else send();
  });
  const total = (performance.now() - start) / 1000;
  sock.destroy();
  samples.sort((a, b) => a - b);
  const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!;
  return { rps: samples.length / total, p50: q(0.5) * 1000, p99: q(0.99) * 1000, measuredRounds: samples.length };
}

function textArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/** CPU microseconds the child has used so far; rejects if the child is gone (a crashed proxy must not hang the run). */
function cpuOf(child: ChildProcess): Promise<NodeJS.CpuUsage> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => {
      child.off('message', onMessage);
      reject(new Error(`bench child exited with ${code} while its CPU was queried`));
    };
    const onMessage = (m: unknown) => {
      const cpu = (m as { cpu?: NodeJS.CpuUsage }).cpu;
      if (!cpu) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(cpu);
    };
    if (child.exitCode !== null || child.signalCode !== null) return onExit(child.exitCode);
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send('cpu');
  });
}

interface CpuPerUnit {
  user: number;
  total: number;
}

/** CPU µs per unit of work between two snapshots; children[0] is the server side, children[1] the client proxy. */
function cpuPerUnit(before: NodeJS.CpuUsage[], after: NodeJS.CpuUsage[], units: number): { server: CpuPerUnit; client?: CpuPerUnit } {
  const n = Math.max(1, units);
  const per = after.map((a, i) => {
    const user = (a.user - before[i]!.user) / n;
    return { user, total: user + (a.system - before[i]!.system) / n };
  });
  return per[1] ? { server: per[0]!, client: per[1] } : { server: per[0]! };
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
    `HBONE loopback benchmark (Node ${process.version}, ${seconds}s bulk, ${rounds} x 1 KiB ping-pong, ${connMs / 1000}s or ${CONN_LOAD.maxConnections} new connections over ${CONN_LOAD.concurrency} loops)`,
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
    const snapshot = () => Promise.all(children.map(cpuOf));
    let before: NodeJS.CpuUsage[] = [];
    const lat = await latency(ports.echoPort, rounds, async () => void (before = await snapshot()));
    const latCpu = cpuPerUnit(before, await snapshot(), lat.measuredRounds);
    await newConnections(undefined, '127.0.0.1', ports.echoPort, CONN_WARMUP);
    before = await snapshot();
    const conns = await newConnections(undefined, '127.0.0.1', ports.echoPort, { ...CONN_LOAD, durationMs: connMs });
    const connCpu = cpuPerUnit(before, await snapshot(), conns.completed);
    if (conns.failed > 0) console.log(`${mode}: ${conns.failed} new connections failed: ${JSON.stringify(conns.errors)}`);
    const cell = (c: CpuPerUnit | undefined, width: number) =>
      (c ? `${c.total.toFixed(0)} (${c.user.toFixed(0)})` : '—').padStart(width);
    console.log(
      [
        mode.padEnd(9),
        gbps.toFixed(2).padStart(11),
        lat.rps.toFixed(0).padStart(8),
        lat.p50.toFixed(0).padStart(7),
        lat.p99.toFixed(0).padStart(7),
        cell(latCpu.client, 27),
        cell(latCpu.server, 26),
        conns.perSecond.toFixed(0).padStart(10),
        cell(connCpu.client, 21),
        cell(connCpu.server, 20),
      ].join(' | '),
    );
    results[mode] = {
      bulk_gbps: gbps,
      round_trips_per_s: lat.rps,
      p50_us: lat.p50,
      p99_us: lat.p99,
      client_cpu_us_per_round_trip: latCpu.client?.total ?? null,
      server_cpu_us_per_round_trip: latCpu.server.total,
      new_conn_per_s: conns.perSecond,
      client_cpu_us_per_new_conn: connCpu.client?.total ?? null,
      server_cpu_us_per_new_conn: connCpu.server.total,
    };
    await Promise.all(children.map((c) => new Promise((r) => (c.once('exit', r), c.kill()))));
  }
  const jsonFile = textArg('json');
  if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify({ hbone: results }, null, 2)}\n`);
}

const role = process.argv.includes('--server') ? 'server' : process.argv.includes('--client') ? 'client' : undefined;
if (role) {
  // A clean exit on kill, so that --cpu-prof gets to write its profile; and when the parent is gone (it failed, or a
  // test's timeout killed it), so that no proxy outlives the run.
  process.once('SIGTERM', () => process.exit(0));
  process.once('disconnect', () => process.exit(0));
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
