// HBONE data-path benchmark on loopback:
//   load client -> TCP -> client proxy (HbonePool) => mTLS/HTTP2 CONNECT => HboneServer -> TCP -> sink / echo
// The load generator, the client proxy and the server side (HBONE server, sink, echo) are separate processes, as
// they would be on real nodes (3 processes share the 2 cores here). Reports single-stream throughput and 1 KiB
// request/response latency, with Node's default HTTP/2 windows and with the HBONE tuning.
// Usage: npm run bench:hbone [-- --seconds 3 --rounds 3000 --modes direct,default,tuned --profile DIR]
import { fork, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { createRootCA, issueWorkloadCertificate } from '../src/identity/certs.js';
import { WorkloadCertificate } from '../src/identity/workload-cert.js';
import { copyBidirectional } from '../src/hbone/copy.js';
import { HbonePool } from '../src/hbone/pool.js';
import { HboneServer } from '../src/hbone/server.js';
import { HBONE_TUNING, NODE_DEFAULT_TUNING, type Http2Tuning } from '../src/hbone/session.js';

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
}

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

// ---- child: HBONE server, sink and echo ----
async function serverSide(cert: CertMsg, tuning: Http2Tuning): Promise<void> {
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
  };
  process.send!(ready);
}

// ---- parent: client proxy and load ----
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

interface ClientReady {
  sinkPort: number;
  echoPort: number;
}

async function clientSide(msg: { cert: CertMsg; ready: ServerReady }, tuning: Http2Tuning): Promise<void> {
  const pool = new HbonePool({ tuning });
  const cert = WorkloadCertificate.fromPem(msg.cert);
  const sink = await clientProxy(pool, cert, msg.ready.hbonePort, msg.ready.sinkPort);
  const echo = await clientProxy(pool, cert, msg.ready.hbonePort, msg.ready.echoPort);
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

async function startChild<T>(role: 'server' | 'client', mode: string, tuning: 'default' | 'tuned', msg: unknown): Promise<{ child: ChildProcess; ready: T }> {
  const profileDir = textArg('profile');
  // --profile DIR: V8 CPU profiles of the proxies (written when they exit), for bench/profile-top.ts.
  const execArgv = profileDir ? [...process.execArgv, '--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${mode}-${role}.cpuprofile`] : process.execArgv;
  const child = fork(fileURLToPath(import.meta.url), [`--${role}`, tuning], { stdio: 'inherit', execArgv });
  child.send(msg as object);
  const ready = await new Promise<T>((resolve, reject) => {
    child.once('message', (m) => resolve(m as T));
    child.once('exit', (code) => reject(new Error(`bench ${role} exited with ${code}`)));
  });
  return { child, ready };
}

async function main(): Promise<void> {
  const seconds = arg('seconds', 3);
  const rounds = arg('rounds', 3000);
  const ca = await createRootCA({ trustDomain: 'cluster.local', ttlSeconds: 3600 });
  const serverCert = await issueWorkloadCertificate(ca, SERVER_ID, 3600);
  const clientCert = await issueWorkloadCertificate(ca, CLIENT_ID, 3600);
  console.log(`HBONE loopback benchmark (Node ${process.version}, ${seconds}s bulk, ${rounds} x 1 KiB ping-pong)`);
  console.log('mode      | bulk Gbit/s | 1KiB rps | p50 µs  | p99 µs');
  const modes = (textArg('modes') ?? 'direct,default,tuned').split(',');
  for (const mode of (['direct', 'default', 'tuned'] as const).filter((m) => modes.includes(m))) {
    const tuning = mode === 'default' ? 'default' : 'tuned';
    const pem = (c: WorkloadCertificate): CertMsg => ({ keyPem: c.keyPem, chainPem: c.chainPem, rootPems: c.rootPems });
    const server = await startChild<ServerReady>('server', mode, tuning, pem(serverCert));
    const children = [server.child];
    let ports: ClientReady = server.ready;
    if (mode !== 'direct') {
      const client = await startChild<ClientReady>('client', mode, tuning, { cert: pem(clientCert), ready: server.ready });
      children.push(client.child);
      ports = client.ready;
    }
    const gbps = await throughput(ports.sinkPort, seconds);
    const lat = await latency(ports.echoPort, rounds);
    console.log(
      `${mode.padEnd(9)} | ${gbps.toFixed(2).padStart(11)} | ${lat.rps.toFixed(0).padStart(8)} | ${lat.p50.toFixed(0).padStart(7)} | ${lat.p99.toFixed(0).padStart(7)}`,
    );
    await Promise.all(children.map((c) => new Promise((r) => (c.once('exit', r), c.kill()))));
  }
}

const role = process.argv.includes('--server') ? 'server' : process.argv.includes('--client') ? 'client' : undefined;
if (role) {
  // A clean exit on kill, so that --cpu-prof gets to write its profile.
  process.once('SIGTERM', () => process.exit(0));
  const tuning = process.argv[process.argv.indexOf(`--${role}`) + 1] === 'default' ? NODE_DEFAULT_TUNING : HBONE_TUNING;
  process.once('message', (m) =>
    void (role === 'server' ? serverSide(m as CertMsg, tuning) : clientSide(m as { cert: CertMsg; ready: ServerReady }, tuning)),
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
