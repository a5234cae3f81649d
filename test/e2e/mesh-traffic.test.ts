// Traffic management at the waypoint end to end, in one local cluster: VirtualServices and DestinationRules
// (networking.istio.io/v1) applied with `ambit apply` as a user would, and what a client pod sees through the waypoint.
//
//   - retries (`retries: {attempts: 3, retryOn: 5xx}`) hide a flaky endpoint: some requests fail without them, none
//     with them, while the flaky endpoint keeps failing;
//   - a route `timeout` cuts a slow backend: 504 `upstream request timeout`, flag UT in the access log and metrics;
//   - route weights 80/20 between two DestinationRule subsets, over 500 requests;
//   - a header match sends `x-version: v2` to subset v2 and the rest to v1; a new pod with the v2 label joins v2;
//   - outlier detection ejects an endpoint that answers only 503s: then the healthy one answers everything;
//   - circuit breakers (`maxConnections: 1`, `http1MaxPendingRequests: 1`): concurrent requests beyond them get
//     Envoy's 503 overflow reply, `x-envoy-overloaded: true`, flag UO.
//   - fault injection: an abort answers `fault filter abort` (FI), a delay holds the request (DI);
//   - a CORS policy: an allowed preflight is answered at the waypoint, allowed requests get the allow headers.
//
// The namespace `traffic` is ambient and bound to the waypoint `waypoint`. Backends are ambit-echo pods: echo-v1 and
// echo-v2 (Service echo, labels version: v1/v2); steady (no failures), flaky (`--fail-every 2`) and broken
// (`--fail-every 1`, but /healthz stays ready); Services flaky = steady + flaky, broken = steady + broken, slow =
// steady (slowness from echo's /delay/MS). Every test applies its objects, waits until the waypoint has them (its
// /config_dump), checks, and deletes them again (also when it fails). Requests of a check are sent in one batch by
// a small node script in the client pod, one `ambit exec` per batch.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, hostSnapshot } from './local-harness.js';
import { MeshCluster, clientPod, samples } from './mesh-harness.js';

const NS = 'traffic';
const FQDN = (service: string) => `${service}.${NS}.svc.cluster.local`;

const ECHO_POD = (name: string, labels: string, ...args: string[]) => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${NS}, labels: ${labels}}
spec:
  containers:
  - name: echo
    command: [ambit-echo, --http-port, "8080"${args.map((a) => `, "${a}"`).join('')}]
    env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
`;
const SERVICE = (name: string, selector: string) => `
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${NS}}
spec:
  selector: ${selector}
  ports: [{name: http, port: 80, targetPort: http}]
`;

const APP = [
  `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}, labels: {istio.io/dataplane-mode: ambient}}\n`,
  ECHO_POD('echo-v1', '{app: echo, version: v1}'),
  ECHO_POD('echo-v2', '{app: echo, version: v2}'),
  ECHO_POD('steady', '{flaky-pool: "yes", broken-pool: "yes", slow-pool: "yes"}'),
  ECHO_POD('flaky', '{flaky-pool: "yes"}', '--fail-every', '2'),
  ECHO_POD('broken', '{broken-pool: "yes"}', '--fail-every', '1'),
  SERVICE('echo', '{app: echo}'),
  SERVICE('flaky', '{flaky-pool: "yes"}'),
  SERVICE('broken', '{broken-pool: "yes"}'),
  SERVICE('slow', '{slow-pool: "yes"}'),
  clientPod(NS),
].join('---\n');

const VS = (name: string, http: string) => `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: ${NS}}\nspec:\n  hosts: [${name}]\n  http:\n${http}`;
const DR = (name: string, spec: string) => `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ${name}, namespace: ${NS}}\nspec:\n  host: ${name}\n${spec}`;
const VERSION_SUBSETS = `  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n`;

/** The body of Envoy's circuit-breaker reply. */
const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';

interface Batch {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  /** Response headers to report (lower-case names). */
  want?: string[];
  count: number;
  /** Requests in flight at once (default 1: one after another, answers in order). */
  concurrency?: number;
  /** A new connection for every request (default: one keep-alive connection per concurrency slot). */
  fresh?: boolean;
}
interface Answer {
  error?: string;
  status?: number;
  /** The echo pod that answered (its `Hostname=`); absent for the waypoint's own replies. */
  pod?: string;
  /** The body of an answer that is not echo's. */
  body?: string;
  overloaded?: string;
  ms?: number;
  /** The response headers the batch asked for. */
  headers?: Record<string, string>;
}

/**
 * Runs in the client pod: argv[1] is a Batch; prints the answers as one JSON array, in the order the requests were
 * sent.
 */
const RUNNER = `
const http = require('http');
const spec = JSON.parse(process.argv[1]);
const u = new URL(spec.url);
function one(agent) {
  const started = Date.now();
  return new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port || 80, path: u.pathname + u.search, method: spec.method || 'GET', headers: spec.headers || {}, agent, timeout: 15000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const m = /^Hostname=(.*)$/m.exec(body);
        const headers = spec.want ? Object.fromEntries(spec.want.filter((n) => res.headers[n] !== undefined).map((n) => [n, String(res.headers[n])])) : undefined;
        resolve({ status: res.statusCode, ...(m ? { pod: m[1] } : { body }), overloaded: res.headers['x-envoy-overloaded'], ms: Date.now() - started, headers });
      });
      res.on('error', (e) => resolve({ error: String(e.code || e.message) }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
    req.on('error', (e) => resolve({ error: String(e.code || e.message) }));
    req.end();
  });
}
(async () => {
  const answers = new Array(spec.count);
  let next = 0;
  await Promise.all(Array.from({ length: spec.concurrency || 1 }, async () => {
    const agent = spec.fresh ? false : new http.Agent({ keepAlive: true, maxSockets: 1 });
    while (next < spec.count) { const i = next++; answers[i] = await one(agent); }
    if (agent) agent.destroy();
  }));
  console.log(JSON.stringify(answers));
})().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
`;

/** `status pod` (or `status` for the waypoint's own replies, or the error) → how many. */
function tally(answers: Answer[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) {
    const k = a.error ? `error ${a.error}` : a.pod ? `${a.status} ${a.pod}` : `${a.status}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}
const show = (b: Batch) => `GET ${b.url}${Object.entries(b.headers ?? {}).map(([k, v]) => ` -H '${k}: ${v}'`).join('')} × ${b.count}${b.concurrency ? ` (${b.concurrency} at a time)` : ''}`;

describe('traffic management at the waypoint: VirtualService and DestinationRule', () => {
  const c = new MeshCluster();
  let hostBefore: ReturnType<typeof hostSnapshot> | undefined;

  const send = async (batch: Batch): Promise<Answer[]> => {
    const r = await c.cli(['exec', `${NS}/client`, '--', 'node', '-e', RUNNER, JSON.stringify(batch)], undefined, 120_000);
    if (r.code !== 0) throw new Error(`client script exited ${r.code}: ${r.stderr || r.stdout}`);
    return JSON.parse(r.stdout) as Answer[];
  };

  const waypointPod = async () => {
    const pod = (await c.pods(NS)).find((p) => p.labels['gateway.networking.k8s.io/gateway-name'] === 'waypoint' && p.ready);
    assert.ok(pod, 'a ready waypoint pod');
    return `${NS}/${pod.name}`;
  };
  const inWaypoint = async (url: string) => {
    const r = await c.cli(['exec', await waypointPod(), '--', 'curl', '-s', '--max-time', '5', url], undefined, 30_000);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  /** What the waypoint has (its /config_dump): the VirtualServices routing bound Services, the DestinationRules. */
  const atWaypoint = async () => {
    const dump = JSON.parse(await inWaypoint('http://127.0.0.1:15000/config_dump')) as {
      boundServices?: { routes?: { route: string }[] }[];
      destinations?: { hostname: string; rule: string; clusters?: { subset?: string; workloads?: string[] }[] }[];
    };
    return {
      objects: new Set([
        ...(dump.boundServices ?? []).flatMap((s) => (s.routes ?? []).map((r) => `VirtualService ${r.route}`)),
        ...(dump.destinations ?? []).map((d) => `DestinationRule ${d.rule}`),
      ]),
      destinations: dump.destinations ?? [],
    };
  };
  const waypointLog = async () => c.ok(['logs', await waypointPod()]);
  /** The waypoint's istio_requests_total to a Service with the given labels, summed. */
  const requestsTo = async (service: string, labels: Record<string, string>) =>
    samples(await inWaypoint('http://127.0.0.1:15020/stats/prometheus'), 'istio_requests_total', { reporter: 'waypoint', destination_service: FQDN(service), ...labels }).reduce((a, b) => a + b, 0);

  /**
   * Applies the YAML, waits until the waypoint has every VirtualService and DestinationRule of it, runs the test;
   * then deletes them and waits until the waypoint has none left, failed test or not (its failure is the one reported).
   */
  const withConfig = async (yaml: string, test: () => Promise<void>) => {
    const names = [...yaml.matchAll(/^kind: (\w+)\nmetadata: \{name: ([^,]+), namespace: ([^}]+)\}/gm)].map((m) => `${m[1]} ${m[3]}/${m[2]}`);
    await c.withManifest(
      yaml,
      names.join(', '),
      {
        applied: async () => {
          const { objects } = await atWaypoint();
          return names.every((n) => objects.has(n));
        },
        removed: async () => {
          const { objects } = await atWaypoint();
          return names.every((n) => !objects.has(n));
        },
      },
      test,
    );
  };

  before(async () => {
    hostBefore = hostSnapshot();
    await c.ok(['up', '-f', c.manifest('app.yaml', APP)]);
    c.recordNetns();
    await c.ok(['waypoint', 'apply', '-n', NS, '--enroll-namespace', '--wait']);
    // Every backend answers through the waypoint before the first test.
    await eventually('every Service answers through the waypoint', async () => {
      const all = await Promise.all(['echo', 'flaky', 'broken', 'slow'].map((s) => send({ url: `http://${s}/`, count: 1 })));
      return all.every((a) => a[0]!.pod !== undefined) || undefined;
    }, 60_000);
  });
  after(async () => {
    await c.destroy();
    if (hostBefore) assert.deepEqual(hostSnapshot(), hostBefore, "the host's interfaces and nft tables must be untouched");
  });

  it('retries (attempts 3, retryOn 5xx) hide a flaky endpoint; without them some requests fail', async () => {
    // Without a VirtualService Istio's default policy retries no status: the flaky pod's 503s reach the client.
    const plain: Batch = { url: 'http://flaky/', count: 40 };
    const without = await send(plain);
    const failed = without.filter((a) => a.status !== 200);
    assert.ok(failed.length > 0, `${show(plain)} without retries: some should fail, got ${JSON.stringify(tally(without))}`);
    assert.deepEqual(failed.map((a) => `${a.status} ${a.pod}`), failed.map(() => '503 flaky'), `only the flaky pod fails, with its 503: ${JSON.stringify(tally(without))}`);

    const failuresAtFlaky = async () => (await c.ok(['logs', `${NS}/flaky`])).split('\n').filter((l) => /" 503 /.test(l)).length;
    await withConfig(VS('flaky', `  - route: [{destination: {host: flaky}}]\n    retries: {attempts: 3, retryOn: 5xx}\n`), async () => {
      const before = await failuresAtFlaky();
      const batch: Batch = { url: 'http://flaky/', count: 100 };
      const answers = await send(batch);
      assert.deepEqual(
        answers.filter((a) => a.status !== 200).map((a) => a.error ?? `${a.status} ${a.pod ?? a.body}`),
        [],
        `${show(batch)} with retries: every request should succeed, got ${JSON.stringify(tally(answers))}`,
      );
      // The flaky pod went on failing: the retries hid its failures.
      await eventually('the flaky pod logged 503s meanwhile', async () => ((await failuresAtFlaky()) > before) || undefined, 10_000);
    });
  });

  it('a route timeout cuts a slow backend: 504 upstream request timeout, flag UT', async () => {
    await withConfig(VS('slow', `  - route: [{destination: {host: slow}}]\n    timeout: 500ms\n`), async () => {
      const fast = await send({ url: 'http://slow/delay/10', count: 1 });
      assert.equal(fast[0]!.status, 200, JSON.stringify(fast));
      const utBefore = await requestsTo('slow', { response_code: '504', response_flags: 'UT' });
      const batch: Batch = { url: 'http://slow/delay/3000', headers: { 'x-request-id': 'traffic-timeout-1' }, count: 1 };
      const [a] = await send(batch);
      assert.equal(a!.status, 504, `${show(batch)}: ${JSON.stringify(a)}`);
      assert.equal(a!.body, 'upstream request timeout');
      assert.ok(a!.ms! >= 450 && a!.ms! < 2500, `cut after the route timeout (500 ms), not the backend's 3 s: ${a!.ms} ms`);
      const line = await eventually('the access log line of the timed-out request', async () => (await waypointLog()).split('\n').find((l) => l.includes('"traffic-timeout-1"')));
      assert.match(line, /"GET \/delay\/3000 HTTP\/1\.1" 504 UT response_timeout /);
      await eventually('istio_requests_total counts the 504 UT', async () => ((await requestsTo('slow', { response_code: '504', response_flags: 'UT' })) === utBefore + 1) || undefined, 10_000);
    });
  });

  it('route weights 80/20 between DestinationRule subsets v1 and v2, over 500 requests', async () => {
    const yaml = [
      DR('echo', VERSION_SUBSETS),
      VS('echo', `  - route:\n    - {destination: {host: echo, subset: v1}, weight: 80}\n    - {destination: {host: echo, subset: v2}, weight: 20}\n`),
    ].join('---\n');
    await withConfig(yaml, async () => {
      const batch: Batch = { url: 'http://echo/', count: 500, concurrency: 10 };
      const tries: string[] = [];
      // A few tries for bad luck (each share is off by more than 0.05 in about 1 batch of 200), as the Gateway API's
      // weight check does.
      for (let attempt = 1; attempt <= 3; attempt++) {
        const answers = await send(batch);
        const t = tally(answers);
        const share = (pod: string) => (t[`200 ${pod}`] ?? 0) / batch.count;
        const problems: string[] = [];
        if (Object.keys(t).some((k) => k !== '200 echo-v1' && k !== '200 echo-v2')) problems.push('answers other than 200 from echo-v1 or echo-v2');
        if (Math.abs(share('echo-v1') - 0.8) > 0.05) problems.push(`echo-v1 got ${share('echo-v1')}, want 0.8 ± 0.05`);
        if (Math.abs(share('echo-v2') - 0.2) > 0.05) problems.push(`echo-v2 got ${share('echo-v2')}, want 0.2 ± 0.05`);
        if (problems.length === 0) return;
        tries.push(`try ${attempt}: ${problems.join('; ')} ${JSON.stringify(t)}`);
      }
      assert.fail(`${show(batch)}: weights not honoured\n${tries.join('\n')}`);
    });
  });

  it('subsets: x-version: v2 goes to subset v2, the rest to v1; a new v2 pod joins subset v2', async () => {
    const yaml = [
      DR('echo', VERSION_SUBSETS),
      VS('echo', `  - match: [{headers: {x-version: {exact: v2}}}]\n    route: [{destination: {host: echo, subset: v2}}]\n  - route: [{destination: {host: echo, subset: v1}}]\n`),
    ].join('---\n');
    await withConfig(yaml, async () => {
      const v2: Batch = { url: 'http://echo/', headers: { 'x-version': 'v2' }, count: 30, concurrency: 3 };
      const rest: Batch = { url: 'http://echo/', headers: { 'x-version': 'v1' }, count: 30, concurrency: 3 };
      assert.deepEqual(tally(await send(v2)), { '200 echo-v2': 30 }, show(v2));
      assert.deepEqual(tally(await send(rest)), { '200 echo-v1': 30 }, show(rest));
      assert.deepEqual(tally(await send({ url: 'http://echo/', count: 30, concurrency: 3 })), { '200 echo-v1': 30 }, 'no x-version header');

      // A second pod with the v2 label: the control plane sends subset v2's new endpoints, and it gets v2 traffic.
      await c.apply('echo-v2b.yaml', ECHO_POD('echo-v2b', '{app: echo, version: v2}'));
      await eventually('echo-v2b ready', async () => (await c.pods(NS)).some((p) => p.name === 'echo-v2b' && p.ready) || undefined, 60_000);
      const both = await eventually('x-version: v2 answered by echo-v2 and echo-v2b', async () => {
        const t = tally(await send({ ...v2, count: 40 }));
        return t['200 echo-v2b'] ? t : undefined;
      });
      assert.deepEqual(Object.keys(both).sort(), ['200 echo-v2', '200 echo-v2b'], `${show(v2)}: only subset v2's pods`);
      assert.deepEqual(tally(await send(rest)), { '200 echo-v1': 30 }, `${show(rest)}: the new pod is not in subset v1`);
    });
  });

  it('outlier detection ejects an endpoint answering 503s: then the healthy one answers everything', async () => {
    const yaml = DR('broken', `  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}\n`);
    await withConfig(yaml, async () => {
      // One request after another: the broken pod's second 503 in a row ejects it at once (Envoy's inline ejection).
      const first: Batch = { url: 'http://broken/', count: 30 };
      const answers = await send(first);
      const t = tally(answers);
      assert.deepEqual(Object.keys(t).sort(), ['200 steady', '503 broken'], `${show(first)}: ${JSON.stringify(t)}`);
      assert.equal(t['503 broken'], 2, `${show(first)}: the broken pod is ejected after its 2nd consecutive 503, got ${JSON.stringify(t)}`);
      const lastFailure = answers.findLastIndex((a) => a.status !== 200);
      assert.ok(answers.slice(lastFailure + 1).every((a) => a.pod === 'steady'));
      // Ejected for 30 s: every request is answered by the healthy endpoint.
      const later: Batch = { url: 'http://broken/', count: 100, concurrency: 4 };
      assert.deepEqual(tally(await send(later)), { '200 steady': 100 }, show(later));
      assert.match(await waypointLog(), /outlier detection: ejected 10\.\S+:8080 of traffic\/broken\.traffic\.svc\.cluster\.local\|80\| for 30000ms \(2 consecutive 5xx\)/);
    });
  });

  it('circuit breakers: concurrent requests beyond maxConnections + http1MaxPendingRequests overflow (503 UO)', async () => {
    const yaml = DR('slow', `  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnections: 1}\n      http: {http1MaxPendingRequests: 1}\n`);
    await withConfig(yaml, async () => {
      const uoBefore = await requestsTo('slow', { response_code: '503', response_flags: 'UO' });
      // 6 requests at once, each on its own connection, to a backend that takes 1.5 s: one connection serves, one
      // request waits, the other 4 overflow.
      const batch: Batch = { url: 'http://slow/delay/1500', count: 6, concurrency: 6, fresh: true };
      const answers = await send(batch);
      const ok = answers.filter((a) => a.status === 200);
      const overflowed = answers.filter((a) => a.status === 503);
      assert.equal(ok.length + overflowed.length, 6, `${show(batch)}: only 200s and 503s, got ${JSON.stringify(answers)}`);
      assert.ok(ok.every((a) => a.pod === 'steady'));
      for (const a of overflowed) {
        assert.equal(a.body, OVERFLOW_BODY, JSON.stringify(a));
        assert.equal(a.overloaded, 'true', `x-envoy-overloaded: ${JSON.stringify(a)}`);
      }
      assert.equal(ok.length, 2, `${show(batch)}: maxConnections 1 + http1MaxPendingRequests 1 → 2 served, 4 overflowed; got ${JSON.stringify(tally(answers))}`);
      assert.ok(overflowed.length > 0);
      const log = await waypointLog();
      assert.ok(
        log.split('\n').filter((l) => l.includes('"GET /delay/1500 HTTP/1.1" 503 UO upstream_reset_before_response_started{overflow} ')).length >= overflowed.length,
        'access log lines with 503 UO upstream_reset_before_response_started{overflow}',
      );
      await eventually('istio_requests_total counts the 503 UO', async () => ((await requestsTo('slow', { response_code: '503', response_flags: 'UO' })) === uoBefore + overflowed.length) || undefined, 10_000);
    });
  });

  // src/model/virtualservices.ts leaves a VirtualService with `fault` or `corsPolicy` unprogrammed ("not supported
  // yet"): nothing to test end to end at this commit.
  it('fault injection: an abort answers its status with `fault filter abort` (FI), a delay holds the request (DI), other requests untouched', async () => {
    const http = [
      `  - match: [{headers: {x-fault: {exact: abort}}}]`,
      `    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}`,
      `    route: [{destination: {host: echo}}]`,
      `  - match: [{headers: {x-fault: {exact: delay}}}]`,
      `    fault: {delay: {fixedDelay: 400ms, percentage: {value: 100}}}`,
      `    route: [{destination: {host: echo}}]`,
      `  - route: [{destination: {host: echo}}]`,
      ``,
    ].join('\n');
    await withConfig(VS('echo', http), async () => {
      const aborted = await send({ url: 'http://echo/', headers: { 'x-fault': 'abort' }, count: 5 });
      assert.deepEqual(aborted.map((a) => `${a.status} ${a.body}`), Array(5).fill('418 fault filter abort'), JSON.stringify(aborted));
      const [delayed] = await send({ url: 'http://echo/fault-delay', headers: { 'x-fault': 'delay' }, count: 1 });
      assert.equal(delayed!.status, 200, JSON.stringify(delayed));
      assert.ok(delayed!.pod?.startsWith('echo-v'), 'the delayed request reached the application');
      assert.ok(delayed!.ms! >= 380, `held for the 400 ms delay: ${delayed!.ms} ms`);
      const line = await eventually('the access log line of the delayed request', async () => (await waypointLog()).split('\n').find((l) => l.includes('"GET /fault-delay HTTP/1.1"')));
      assert.match(line, /" 200 DI via_upstream /);
      const plain = await send({ url: 'http://echo/', count: 5 });
      assert.ok(plain.every((a) => a.status === 200 && a.pod !== undefined), JSON.stringify(tally(plain)));
    });
  });

  it('CORS: an allowed preflight is answered at the waypoint, allowed requests get the allow headers, other origins none', async () => {
    const cors = `  - corsPolicy: {allowOrigins: [{exact: "https://shop.example"}], allowMethods: [GET, POST], allowHeaders: [x-token], maxAge: 1h, allowCredentials: true}\n    route: [{destination: {host: echo}}]\n`;
    await withConfig(VS('echo', cors), async () => {
      const want = ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers', 'access-control-max-age', 'access-control-allow-credentials'];
      const [preflight] = await send({ url: 'http://echo/cart', method: 'OPTIONS', headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST' }, want, count: 1 });
      assert.equal(preflight!.status, 200);
      assert.equal(preflight!.pod, undefined, 'answered by the waypoint, not the application');
      assert.deepEqual(preflight!.headers, {
        'access-control-allow-origin': 'https://shop.example',
        'access-control-allow-methods': 'GET,POST',
        'access-control-allow-headers': 'x-token',
        'access-control-max-age': '3600',
        'access-control-allow-credentials': 'true',
      });
      const [allowed] = await send({ url: 'http://echo/cart', headers: { origin: 'https://shop.example' }, want, count: 1 });
      assert.ok(allowed!.pod?.startsWith('echo-v'));
      assert.deepEqual(allowed!.headers, { 'access-control-allow-origin': 'https://shop.example', 'access-control-allow-credentials': 'true' });
      const [other] = await send({ url: 'http://echo/cart', headers: { origin: 'https://evil.example' }, want, count: 1 });
      assert.ok(other!.pod?.startsWith('echo-v'));
      assert.deepEqual(other!.headers, {});
    });
  });
});
