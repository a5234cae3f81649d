// The `haproxy` scenario: two HAProxy processes as an mTLS TCP tunnel between the same two pods as `direct`. The
// client-side one runs in the client pod's network namespace and listens on 127.0.0.1; for each connection it opens
// a TLS 1.3 connection (client certificate, server chain verified against the bench root) to the server-side one in
// the server pod, which verifies the client's chain and forwards in plain TCP to the app on 127.0.0.1. Certificates
// carry SPIFFE identities like the mesh's, issued by src/identity from a throwaway root.
//
// This is the classic "TLS tunnel" a mesh replaces: one TLS connection per TCP connection, no multiplexing. HAProxy
// checks chains but not the SPIFFE URI SAN (it has no option for that); otherwise the security is comparable.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRootCA, issueWorkloadCertificate } from '../../src/identity/certs.js';
import { spiffeId } from '../../src/identity/spiffe.js';

/** A port the tunnel carries: client side listens on 127.0.0.1:local, server side on tls, forwarding to app. */
export interface TunnelPort {
  local: number;
  tls: number;
  app: number;
}

export interface HaproxyProcess {
  readonly role: 'client' | 'server';
  readonly pid: number;
  stop(): Promise<void>;
}

const TRUST_DOMAIN = 'cluster.local';
const READY_TIMEOUT_MS = 10_000;

// One thread per process: the same single event loop our Node proxy has, so CPU per request compares like for
// like. HAProxy's default would be one thread per CPU it may use.
const GLOBAL = `global
  nbthread 1
  maxconn 4000
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-server-options ssl-min-ver TLSv1.3
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
`;

/** Writes certificates and both configurations into `dir`; returns the config paths. */
export async function writeHaproxyConfigs(
  dir: string,
  o: { namespace: string; serverIP: string; ports: TunnelPort[] },
): Promise<{ client: string; server: string }> {
  const ca = await createRootCA({ trustDomain: TRUST_DOMAIN, ttlSeconds: 86_400 });
  const rootFile = join(dir, 'haproxy-root.pem');
  writeFileSync(rootFile, ca.certPem);
  const pemFor = async (name: string): Promise<string> => {
    const cert = await issueWorkloadCertificate(ca, spiffeId(TRUST_DOMAIN, o.namespace, name), 86_400);
    const file = join(dir, `haproxy-${name}.pem`);
    writeFileSync(file, cert.chainPem.join('') + cert.keyPem, { mode: 0o600 });
    return file;
  };
  const clientPem = await pemFor('bench-client');
  const serverPem = await pemFor('bench-server');

  let client = GLOBAL;
  let server = GLOBAL;
  for (const p of o.ports) {
    client += `listen out_${p.local}
  bind 127.0.0.1:${p.local}
  server upstream ${o.serverIP}:${p.tls} ssl crt ${clientPem} ca-file ${rootFile} verify required
`;
    server += `listen in_${p.tls}
  bind ${o.serverIP}:${p.tls} ssl crt ${serverPem} ca-file ${rootFile} verify required
  server app 127.0.0.1:${p.app}
`;
  }
  const paths = { client: join(dir, 'haproxy-client.cfg'), server: join(dir, 'haproxy-server.cfg') };
  writeFileSync(paths.client, client);
  writeFileSync(paths.server, server);
  return paths;
}

/**
 * Starts HAProxy in the foreground inside a network namespace (optionally pinned); resolves once it listens on
 * `readyPort` at `readyHost`, rejects with its output if it exits or does not get there in time.
 */
export async function startHaproxy(
  role: 'client' | 'server',
  netnsPath: string,
  config: string,
  ready: { host: string; port: number },
  cpus: string | undefined,
): Promise<HaproxyProcess> {
  // nsenter and taskset exec, so the pid we get is HAProxy's own (what /proc sampling needs).
  const argv = ['nsenter', `--net=${netnsPath}`, '--', ...(cpus ? ['taskset', '--cpu-list', cpus] : []), 'haproxy', '-db', '-f', config];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d));
  child.stderr!.on('data', (d: Buffer) => (output += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const proc: HaproxyProcess = { role, pid: child.pid!, stop: () => stopChild(child, exited) };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`haproxy (${role} side) exited: ${output.trim()}`);
    }
    if (await listening(netnsPath, ready.host, ready.port)) return proc;
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`haproxy (${role} side) does not listen on ${ready.host}:${ready.port} after ${READY_TIMEOUT_MS} ms: ${output.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(killer);
}

/** Whether something listens on host:port inside the namespace (ss reads the namespace's socket table). */
function listening(netnsPath: string, host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const ss = spawn('nsenter', [`--net=${netnsPath}`, '--', 'ss', '-Htln', `src ${host}:${port}`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    ss.stdout.on('data', (d: Buffer) => (out += d));
    ss.on('error', () => resolve(false));
    ss.on('close', () => resolve(out.trim().length > 0));
  });
}
