import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ZtunnelTelemetry } from '../../src/telemetry/connection.js';
import { LogSink } from '../../src/telemetry/log.js';
import { startAdmin, type AdminServer, type Readiness } from '../../src/telemetry/admin.js';

describe('ztunnel admin, metrics and readiness endpoints', () => {
  const lines: string[] = [];
  const sink = new LogSink({ write: (l) => lines.push(l) });
  const telemetry = new ZtunnelTelemetry({ log: sink, buildTag: 'test' });
  let readiness: Readiness = { ready: false, pending: ['state manager', 'dns proxy'] };
  let dump: () => object = () => ({ workloads: [{ name: 'echo' }], services: [], policies: [], certificates: [] });
  let quits = 0;
  let server: AdminServer;

  before(async () => {
    server = await startAdmin({
      title: 'ztunnel',
    adminPort: 0,
      metricsPort: 0,
      readinessPort: 0,
      configDump: () => dump(),
      registry: telemetry.registry,
      ready: () => readiness,
      logSink: sink,
      log: sink.logger('admin'),
      onQuit: () => quits++,
    });
  });
  after(() => server.close());

  const get = (port: number, path: string, method = 'GET') => fetch(`http://127.0.0.1:${port}${path}`, { method });

  it('binds the admin port to loopback only and the others to the wildcard', () => {
    assert.equal(server.admin.address, '127.0.0.1');
    assert.equal(server.metrics.address, '0.0.0.0');
    assert.equal(server.readiness.address, '0.0.0.0');
  });

  it('serves /config_dump as JSON and survives a failing dump', async () => {
    const res = await get(server.admin.port, '/config_dump');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /application\/json/);
    assert.deepEqual(await res.json(), { workloads: [{ name: 'echo' }], services: [], policies: [], certificates: [] });
    const saved = dump;
    dump = () => {
      throw new Error('state not built');
    };
    const bad = await get(server.admin.port, '/config_dump');
    assert.equal(bad.status, 500);
    assert.equal(await bad.text(), 'state not built\n');
    assert.ok(lines.some((l) => l.includes('\terror\tadmin\tadmin request GET /config_dump failed\terror="state not built"')));
    dump = saved;
    assert.equal((await get(server.admin.port, '/config_dump')).status, 200);
  });

  it('shows and changes the log filter on /logging as ztunnel does: POST only, merged into the current filter, reset', async () => {
    const post = (q = '') => get(server.admin.port, `/logging${q}`, 'POST');
    assert.equal(await (await post()).text(), 'current log level is info\n');
    const getting = await get(server.admin.port, '/logging?level=debug');
    assert.equal(getting.status, 405);
    assert.match(await getting.text(), /^Invalid HTTP method\n \nusage: POST \/logging\t/);
    assert.equal(sink.level, 'info', 'a GET changes nothing');

    // Directives add to the current filter; targets print before the default, longest first, as tracing prints them.
    const set = await post('?level=access=debug');
    assert.equal(set.status, 200);
    assert.equal(await set.text(), 'current log level is access=debug,info\n');
    assert.ok(lines.some((l) => l.includes('\tinfo\tadmin\tnew log filter is access=debug,info')), lines.join(''));
    assert.equal(await (await post('?level=warn,inbound=trace')).text(), 'current log level is inbound=trace,access=debug,warn\n');
    assert.equal(sink.level, 'inbound=trace,access=debug,warn');
    assert.equal(await (await post('?level=')).text(), 'current log level is inbound=trace,access=debug,warn\n', 'an empty level lists');

    for (const bad of ['chatty', 'access', 'info,', 'access=loud']) {
      const res = await post(`?level=${encodeURIComponent(bad)}`);
      assert.equal(res.status, 400, bad);
      const body = await res.text();
      assert.ok(body.startsWith(`Invalid level provided: ${bad}\n\nusage: POST /logging`), body);
      assert.ok(body.includes('hint: loglevel:\terror|warn|info|debug|trace|off\n'));
    }
    assert.equal(sink.level, 'inbound=trace,access=debug,warn', 'a refused level changes nothing');

    // reset goes back to the filter the process started with, then applies the given directives.
    assert.equal(await (await post('?reset')).text(), 'current log level is info\n');
    assert.equal(await (await post('?reset&level=access=debug')).text(), 'current log level is access=debug,info\n');
    sink.setLevel('info');
  });

  it('takes a CPU profile on /debug/pprof/profile, one at a time, and refuses a bad duration', async () => {
    const first = get(server.admin.port, '/debug/pprof/profile?seconds=0.5');
    await new Promise((r) => setTimeout(r, 150));
    const busy = await get(server.admin.port, '/debug/pprof/profile?seconds=0.1');
    assert.equal(busy.status, 409);
    assert.match(await busy.text(), /already being taken/);
    const res = await first;
    assert.equal(res.status, 200);
    const profile = (await res.json()) as { nodes: unknown[]; samples: number[]; timeDeltas: number[] };
    assert.ok(profile.nodes.length > 1 && profile.samples.length > 0, 'a V8 .cpuprofile with samples');
    assert.equal(profile.samples.length, profile.timeDeltas.length);
    for (const bad of ['0', '-1', 'soon', '61']) {
      const r = await get(server.admin.port, `/debug/pprof/profile?seconds=${bad}`);
      assert.equal(r.status, 400, `seconds=${bad}`);
      assert.match(await r.text(), /seconds must be a number in \(0, 60\]/);
    }
  });

  it('shuts down only on POST /quitquitquit', async () => {
    assert.equal((await get(server.admin.port, '/quitquitquit')).status, 405);
    assert.equal(quits, 0);
    const res = await get(server.admin.port, '/quitquitquit', 'POST');
    assert.equal(res.status, 200);
    await res.text();
    assert.equal(quits, 1);
  });

  it('serves Prometheus text on /metrics and /stats/prometheus, and /healthz', async () => {
    telemetry.open({ direction: 'outbound', srcAddr: '10.0.0.1:1', dstAddr: '10.0.0.2:80', mtls: false }).close();
    for (const path of ['/metrics', '/stats/prometheus']) {
      const res = await get(server.metrics.port, path);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
      const body = await res.text();
      assert.match(body, /^istio_build\{component="ztunnel",tag="test"\} 1$/m);
      assert.match(body, /^istio_tcp_connections_closed_total\{reporter="source",.*\} 1$/m);
    }
    const health = await get(server.metrics.port, '/healthz');
    assert.equal(health.status, 200);
    assert.equal((await get(server.metrics.port, '/config_dump')).status, 404, 'config_dump is admin-only');
  });

  it('answers /healthz/ready with 500 and the sorted pending tasks until ready', async () => {
    const notReady = await get(server.readiness.port, '/healthz/ready');
    assert.equal(notReady.status, 500);
    assert.equal(await notReady.text(), 'not ready, pending: dns proxy, state manager\n');
    readiness = { ready: true, pending: [] };
    const ready = await get(server.readiness.port, '/healthz/ready');
    assert.equal(ready.status, 200);
    assert.equal(await ready.text(), 'ready\n');
  });

  it('keeps serving after a garbage request', async () => {
    await new Promise<void>((resolve) => {
      const s = net.connect(server.admin.port, '127.0.0.1', () => s.end('\x00\x01 not http at all\r\n\r\n'));
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    assert.equal((await get(server.admin.port, '/nope')).status, 404);
    assert.equal((await get(server.admin.port, '/')).status, 200);
  });
});
