// A ztunnel rolling restart (`ambit rollout restart ztunnel`) under load, as Istio's DaemonSet update does it: the new
// ztunnel takes the node's pods over before the old one gets SIGTERM, so new connections and DNS lookups never fail;
// the old one keeps serving its open connections for at most its drain period, then resets them and exits.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ZTUNNEL_TERMINATION_GRACE_SECONDS } from '../../src/local/components.js';
import { eventually } from './local-harness.js';
import { MeshCluster } from './mesh-harness.js';

const APP = `
apiVersion: v1
kind: Namespace
metadata: {name: mesh, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: mesh, labels: {app: server}}
spec:
  containers:
  - name: echo
    command: [ambit-echo, --http-port, "8080", --tcp-port, "9090"]
    readinessProbe: {tcpSocket: {port: 9090}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: server, namespace: mesh}
spec:
  selector: {app: server}
  ports: [{name: tcp-echo, port: 9090, targetPort: 9090}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: mesh}
spec:
  containers:
  - {name: main, command: [sleep, infinity]}
`;

/**
 * Runs in the client pod against argv[1]:argv[2]. A steady loop of new connections, each preceded by a DNS lookup of
 * the name (answered by ztunnel's DNS proxy), and one long stream that echoes a line every 200 ms. Prints a JSON
 * line of cumulative counts every 100 ms, one per failure, and one when the long stream closes.
 */
const LOAD = `const net = require('net'), dns = require('dns');
const host = process.argv[1], port = Number(process.argv[2]);
let ok = 0, fail = 0, dnsFail = 0, pongs = 0, buf = '';
const out = (o) => console.log(JSON.stringify({ t: Date.now(), ...o }));
setInterval(() => out({ ok, fail, dnsFail, pongs }), 100);
const hold = net.connect({ host, port });
let ticker;
hold.on('connect', () => { ticker = setInterval(() => hold.write('x\\n'), 200); });
hold.on('data', (d) => { buf += d; while (buf.includes('\\n')) { buf = buf.slice(buf.indexOf('\\n') + 1); pongs++; } });
hold.on('error', (e) => out({ holdError: e.code || e.message }));
hold.on('close', () => { clearInterval(ticker); out({ holdClosed: true, pongs }); });
const lookup = () => new Promise((resolve, reject) => dns.lookup(host, { family: 4 }, (e, a) => (e ? reject(Object.assign(e, { dns: true })) : resolve(a))));
const roundTrip = (address) => new Promise((resolve, reject) => {
  const s = net.connect({ host: address, port });
  let got = '';
  s.setTimeout(5000, () => { s.destroy(); reject(new Error('timeout')); });
  s.on('connect', () => s.write('ping\\n'));
  s.on('data', (d) => { got += d; if (got.includes('\\n')) { resolve(); s.end(); } });
  s.on('error', reject);
  s.on('close', () => reject(new Error('closed before the echo')));
});
(async () => {
  for (;;) {
    try { await roundTrip(await lookup()); ok++; }
    catch (e) { if (e.dns) dnsFail++; else fail++; out({ failure: e.code || e.message, dns: !!e.dns }); }
    await new Promise((r) => setTimeout(r, 5));
  }
})();`;

interface Sample {
  t: number;
  ok?: number;
  fail?: number;
  dnsFail?: number;
  pongs?: number;
  holdClosed?: boolean;
  holdError?: string;
  failure?: string;
  dns?: boolean;
}

/** The drain ztunnel derives from the grace period the local cluster gives it (as ztunnel: 1 s less up to 10 s). */
const DRAIN_MS = (ZTUNNEL_TERMINATION_GRACE_SECONDS > 10 ? ZTUNNEL_TERMINATION_GRACE_SECONDS - 5 : ZTUNNEL_TERMINATION_GRACE_SECONDS - 1) * 1000;
/** Slack for the forced close after the deadline and for the pod to see the reset. */
const CLOSE_MARGIN_MS = 3000;

describe('ztunnel rolling restart', () => {
  const c = new MeshCluster();
  before(async () => {
    await c.ok(['up', '--nodes', '1', '-f', c.manifest('app.yaml', APP)]);
  });
  after(() => c.destroy());

  it('keeps new connections and DNS working and closes the open stream at the drain deadline', async () => {
    const load = c.spawnExec('mesh/client', LOAD, 'server.mesh.svc.cluster.local', '9090');
    const samples = (): Sample[] =>
      load
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Sample);
    const last = () => samples().filter((s) => s.ok !== undefined).at(-1);
    try {
      // Warm: the loop succeeds and the long stream echoes.
      await eventually('the loop and the long stream to run through ztunnel', async () => {
        const s = last();
        return s && s.ok! >= 20 && s.pongs! >= 3 ? s : undefined;
      });
      const old = await c.component('ztunnel', 'node-1');

      const out = await c.ok(['rollout', 'restart', 'ztunnel', '--node', 'node-1']);
      // The old one finished its drain and exited by itself, before the SIGKILL at the end of its grace period.
      assert.match(out, new RegExp(`^ztunnel on node-1 restarted \\(pid ${old.pid} -> \\d+; old process: exit code 0\\)$`, 'm'));
      const atReturn = last()!;

      // The old process is gone (exited and reaped) and the new one is the component now.
      assert.ok(!existsSync(`/proc/${old.pid}`), `old ztunnel ${old.pid} still exists`);
      const now = await eventually('the new ztunnel healthy', async () => {
        const z = await c.component('ztunnel', 'node-1');
        return z.healthy ? z : undefined;
      });
      assert.notEqual(now.pid, old.pid);

      // The new ztunnel alone serves the loop for a while longer.
      await eventually('the loop to go on through the new ztunnel', async () => ((last()?.ok ?? 0) >= atReturn.ok! + 50 ? true : undefined));
      load.child.kill('SIGKILL');

      const log = await c.ztunnelLog('node-1');
      const term = /^(\S+)\s+\S+\s+ztunnel\s+SIGTERM received, draining connections for up to (\d+)ms$/m.exec(log);
      assert.ok(term, `no SIGTERM line in the ztunnel log:\n${log.split('\n').filter((l) => !l.includes('\taccess\t')).join('\n')}`);
      assert.equal(Number(term[2]), DRAIN_MS, 'drain period from TERMINATION_GRACE_PERIOD_SECONDS');
      const termAt = Date.parse(term[1]!.replace(/(\.\d{3})\d*Z$/, '$1Z'));
      assert.match(log, /drain duration expired with pending connections, forcefully shutting down/);

      const all = samples();
      const final = last()!;
      const failures = all.filter((s) => s.failure !== undefined);
      const closed = all.find((s) => s.holdClosed);
      process.stdout.write(
        `# restart under load: ${final.ok} connections ok, ${final.fail} failed, ${final.dnsFail} DNS lookups failed; ` +
          `long stream closed ${closed ? closed.t - termAt : '-'} ms after SIGTERM (drain ${DRAIN_MS} ms)\n`,
      );
      assert.deepEqual(failures, [], 'no new connection or DNS lookup failed during the restart');
      assert.equal(final.fail, 0);
      assert.equal(final.dnsFail, 0);

      // The long stream was served through the drain, then reset at its deadline, not held until the client gives up.
      assert.ok(closed, 'the long stream was closed by the old ztunnel');
      const servedDuringDrain = all.filter((s) => s.pongs !== undefined && s.t > termAt && s.t < closed.t).map((s) => s.pongs!);
      const pongsAtTerm = all.filter((s) => s.pongs !== undefined && s.t <= termAt).at(-1)?.pongs ?? 0;
      assert.ok(Math.max(0, ...servedDuringDrain) > pongsAtTerm, 'the long stream kept echoing during the drain');
      const okAt = (t: number) => all.filter((s) => s.ok !== undefined && s.t <= t).at(-1)?.ok ?? 0;
      assert.ok(okAt(closed.t) > okAt(termAt), 'new connections succeeded while the old ztunnel drained');
      assert.ok(closed.t - termAt <= DRAIN_MS + CLOSE_MARGIN_MS, `long stream closed ${closed.t - termAt} ms after SIGTERM; drain is ${DRAIN_MS} ms`);
      assert.ok(closed.t - termAt >= DRAIN_MS - 1000, `long stream closed ${closed.t - termAt} ms after SIGTERM, before the drain period (${DRAIN_MS} ms) ended`);
    } finally {
      load.child.kill('SIGKILL');
    }
  });
});
