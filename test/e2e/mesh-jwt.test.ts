// RequestAuthentication (JWT) at the waypoint end to end, in one local cluster: RequestAuthentications and
// AuthorizationPolicies (security.istio.io/v1) applied with `ambit apply` as a user would, tokens signed with keys
// this test generates (jose), and what a client pod sees through the waypoint. Nothing outside the cluster is used.
//
//   - Istio's ambient TestL7JWT (tests/integration/ambient/testdata/requestauthn/waypoint-jwt.yaml.tmpl): a
//     RequestAuthentication with targetRefs to the waypoint Gateway (issuers 1 and 2, inline jwks), one with a
//     `selector` (issuer 3) that waypoints ignore, and an AuthorizationPolicy on the Gateway allowing
//     requestPrincipals issuer-1/sub-1 or issuer-3/sub-1, or path /healthz. No token → 403, issuer 1 → 200, issuer 3
//     → 401, issuer 2 → 403, expired → 401, /healthz without a token → 200;
//   - a JWKS served by a pod of the mesh (`jwksUri` to its Service), with a RequestAuthentication and an
//     AuthorizationPolicy targeting a Service (kind Service): the other Service is untouched; the JWKS file is
//     rotated to a new key and a token of the new key is accepted without restarting anything (the waypoint fetches
//     the set again when a token names a key id it lacks, at most every ~5 s);
//   - token locations (fromHeaders with a prefix, fromParams, fromCookies; the default Authorization bearer and
//     access_token parameter), outputClaimToHeaders and outputPayloadToHeader as the backend sees them, the token's
//     header removed unless forwardOriginalToken;
//   - a refused token's `www-authenticate` and its access-log line `jwt_authn_access_denied{Jwt_is_expired}`.
//
// The namespace `jwt` is ambient and bound to the waypoint `waypoint`. The backend is one ambit-echo pod behind the
// Services echo and other (it answers JSON with the request headers it got when asked with `accept:
// application/json`); the JWKS pod is a small node HTTP server returning the file the test writes into the pod's own
// /tmp (through `ambit exec`) behind the Service jwks. Every test applies its objects, waits until the waypoint has them (its
// /config_dump), checks, and deletes them again (also when it fails). Requests of a check are sent in one batch by a
// small node script in the client pod, one `ambit exec` per batch.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { eventually, hostSnapshot } from './local-harness.js';
import { MeshCluster, clientPod } from './mesh-harness.js';

const NS = 'jwt';
const ISSUER_1 = 'test-issuer-1@ambit.test';
const ISSUER_2 = 'test-issuer-2@ambit.test';
const ISSUER_3 = 'test-issuer-3@ambit.test';
const MESH_ISSUER = 'https://login.jwt.svc.cluster.local';
const LOGIN = 'https://login.ambit.test';
const PARTNER = 'https://partner.ambit.test';

/** Serves argv[1] (read on every request, so the test can rotate it) at /jwks.json and logs each fetch. */
const JWKS_SERVER = `const fs = require('fs');
require('http').createServer((q, s) => {
  if (q.url === '/healthz') return s.end('ok');
  if (q.url.split('?')[0] !== '/jwks.json') { s.statusCode = 404; return s.end(); }
  const body = fs.readFileSync(process.argv[1]);
  console.log('served /jwks.json ' + JSON.parse(body).keys.map((k) => k.kid).join(','));
  s.setHeader('content-type', 'application/json');
  s.end(body);
}).listen(8080);`;

/** Where the JWKS pod reads its key set: its own /tmp, which the test writes through `ambit exec`. */
const JWKS_FILE = '/tmp/jwks.json';

const APP = (jwksFile: string) =>
  [
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}, labels: {istio.io/dataplane-mode: ambient}}\n`,
    `
apiVersion: v1
kind: Pod
metadata: {name: echo, namespace: ${NS}, labels: {app: echo}}
spec:
  containers:
  - name: echo
    command: [ambit-echo, --http-port, "8080"]
    env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
`,
    `
apiVersion: v1
kind: Pod
metadata: {name: jwks, namespace: ${NS}, labels: {app: jwks}}
spec:
  containers:
  - name: jwks
    command: [node, -e, ${JSON.stringify(JWKS_SERVER)}, ${JSON.stringify(jwksFile)}]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
`,
    ...['echo', 'other', 'jwks'].map(
      (name) => `
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${NS}}
spec:
  selector: {app: ${name === 'other' ? 'echo' : name}}
  ports: [{name: http, port: 80, targetPort: http}]
`,
    ),
    clientPod(NS),
  ].join('---\n');

const GATEWAY_REF = `{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}`;
const SERVICE_REF = (name: string) => `{kind: Service, group: "", name: ${name}}`;
const RA = (name: string, target: string, rules: string) =>
  `apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ${name}, namespace: ${NS}}\nspec:\n  ${target}\n  jwtRules:\n${rules}`;
const AP = (name: string, targetRef: string, rules: string) =>
  `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}, namespace: ${NS}}\nspec:\n  targetRefs: [${targetRef}]\n  rules:\n${rules}`;

interface Request {
  url: string;
  headers?: Record<string, string>;
}
interface Answer {
  error?: string;
  status?: number;
  /** The echo pod that answered; absent for the waypoint's own replies. */
  pod?: string;
  /** The URL (path and query) and request headers the backend got. */
  url?: string;
  headers?: Record<string, string>;
  /** The body of an answer that is not echo's JSON. */
  body?: string;
  responseHeaders: Record<string, string>;
}

/** Runs in the client pod: argv[1] is a list of requests, sent one after another; prints the answers as JSON. */
const RUNNER = `
const http = require('http');
const requests = JSON.parse(process.argv[1]);
function one(r) {
  const u = new URL(r.url);
  return new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port || 80, path: u.pathname + u.search, method: 'GET', headers: { accept: 'application/json', ...(r.headers || {}) }, agent: false, timeout: 10000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const out = { status: res.statusCode, responseHeaders: {} };
        for (const n of ['www-authenticate', 'content-type']) if (res.headers[n] !== undefined) out.responseHeaders[n] = String(res.headers[n]);
        try {
          const e = JSON.parse(body);
          Object.assign(out, { pod: e.pod, url: e.url, headers: e.headers });
        } catch {
          out.body = body;
        }
        resolve(out);
      });
      res.on('error', (e) => resolve({ error: String(e.code || e.message) }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
    req.on('error', (e) => resolve({ error: String(e.code || e.message) }));
    req.end();
  });
}
(async () => {
  const out = [];
  for (const r of requests) out.push(await one(r));
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
`;

const show = (r: Request) => `GET ${r.url}${Object.entries(r.headers ?? {}).map(([k, v]) => ` -H '${k}: ${v.length > 40 ? `${v.slice(0, 37)}...` : v}'`).join('')}`;
/** What a test compares: the status and, for the waypoint's own replies, the body. */
const outcome = (a: Answer) => (a.error ? `error ${a.error}` : a.pod ? `${a.status} from ${a.pod}` : `${a.status} ${JSON.stringify(a.body)}`);

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
interface Key {
  kid: string;
  privateKey: PrivateKey;
  jwk: JWK;
}
async function newKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}
const jwksOf = (...keys: Key[]) => JSON.stringify({ keys: keys.map((k) => k.jwk) });
const now = () => Math.floor(Date.now() / 1000);
const sign = (k: Key, claims: Record<string, unknown>) =>
  new SignJWT({ iat: now(), exp: now() + 3600, ...claims }).setProtectedHeader({ alg: 'RS256', kid: k.kid, typ: 'JWT' }).sign(k.privateKey);
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('RequestAuthentication (JWT) at the waypoint', () => {
  const c = new MeshCluster();
  /** Replaces the JWKS the jwks pod serves (atomically: a fetch never reads half a file). */
  const serveJwks = (jwks: string) => c.ok(['exec', `${NS}/jwks`, '--', 'sh', '-c', `cat > ${JWKS_FILE}.new && mv ${JWKS_FILE}.new ${JWKS_FILE}`], jwks);
  let hostBefore: ReturnType<typeof hostSnapshot> | undefined;
  /** Istio's test suite signs every issuer's tokens with one key; so do we. */
  let testKey: Key;
  let meshKeyA: Key;
  let meshKeyB: Key;

  const send = async (requests: Request[]): Promise<Answer[]> => {
    const r = await c.cli(['exec', `${NS}/client`, '--', 'node', '-e', RUNNER, JSON.stringify(requests)], undefined, 120_000);
    if (r.code !== 0) throw new Error(`client script exited ${r.code}: ${r.stderr || r.stdout}`);
    return JSON.parse(r.stdout) as Answer[];
  };
  const sendOne = async (r: Request) => (await send([r]))[0]!;

  const waypointPod = async () => {
    const pod = (await c.pods(NS)).find((p) => p.labels['gateway.networking.k8s.io/gateway-name'] === 'waypoint' && p.ready);
    assert.ok(pod, 'a ready waypoint pod');
    return pod;
  };
  const inWaypoint = async (url: string) => {
    const r = await c.cli(['exec', `${NS}/${(await waypointPod()).name}`, '--', 'curl', '-s', '--max-time', '5', url], undefined, 30_000);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  /**
   * The objects the waypoint enforces (its /config_dump): `RequestAuthentication ns/name` when it has the resource and
   * the waypoint or a bound Service refers to it, `AuthorizationPolicy ns/name` when it has the policy.
   */
  const atWaypoint = async () => {
    const dump = JSON.parse(await inWaypoint('http://127.0.0.1:15000/config_dump')) as {
      waypoint?: { requestAuthentications?: string[] } | null;
      boundServices?: { requestAuthentications?: string[] }[];
      policies?: { name: string; namespace: string }[];
      requestAuthentications?: { name: string; namespace: string }[];
    };
    const referred = new Set([...(dump.waypoint?.requestAuthentications ?? []), ...(dump.boundServices ?? []).flatMap((s) => s.requestAuthentications ?? [])]);
    return new Set([
      ...(dump.requestAuthentications ?? []).filter((a) => referred.has(`${a.namespace}/${a.name}`)).map((a) => `RequestAuthentication ${a.namespace}/${a.name}`),
      ...(dump.policies ?? []).map((p) => `AuthorizationPolicy ${p.namespace}/${p.name}`),
    ]);
  };
  const waypointLog = async () => c.ok(['logs', `${NS}/${(await waypointPod()).name}`]);

  /**
   * Applies the YAML, waits until the waypoint has every object of it (less `ignored`, which it must never get), runs
   * the test; then deletes them and waits until the waypoint has none left, failed test or not (its failure is the one
   * reported).
   */
  const withConfig = async (yaml: string, test: () => Promise<void>, ignored: string[] = []) => {
    const names = [...yaml.matchAll(/^kind: (\w+)\nmetadata: \{name: ([^,]+), namespace: ([^}]+)\}/gm)].map((m) => `${m[1]} ${m[3]}/${m[2]}`);
    const enforced = names.filter((n) => !ignored.includes(n));
    await c.withManifest(
      yaml,
      enforced.join(', '),
      {
        applied: async () => {
          const objects = await atWaypoint();
          if (!enforced.every((n) => objects.has(n))) return false;
          for (const n of ignored) assert.ok(!objects.has(n), `${n} must be ignored by the waypoint`);
          return true;
        },
        removed: async () => {
          const objects = await atWaypoint();
          return enforced.every((n) => !objects.has(n));
        },
      },
      test,
    );
  };

  /** Sends the cases in one batch and compares every outcome at once (request, expected, got). */
  const expectOutcomes = async (cases: [string, Request, string][]) => {
    const answers = await send(cases.map(([, r]) => r));
    const got = cases.map(([what, r], i) => `${what}: ${show(r)} → ${outcome(answers[i]!)}`);
    const want = cases.map(([what, r, expected]) => `${what}: ${show(r)} → ${expected}`);
    assert.deepEqual(got, want);
    return answers;
  };

  before(async () => {
    hostBefore = hostSnapshot();
    [testKey, meshKeyA, meshKeyB] = await Promise.all([newKey('test-key'), newKey('mesh-a'), newKey('mesh-b')]);
    await c.ok(['up', '-f', c.manifest('app.yaml', APP(JWKS_FILE))]);
    c.recordNetns();
    await c.ok(['waypoint', 'apply', '-n', NS, '--enroll-namespace', '--wait']);
    await eventually('echo answers through the waypoint and the jwks pod is ready', async () => {
      const [a, b] = await send([{ url: 'http://echo/' }, { url: 'http://other/' }]);
      const jwksReady = (await c.pods(NS)).some((p) => p.name === 'jwks' && p.ready);
      return (a!.pod === 'echo' && b!.pod === 'echo' && jwksReady) || undefined;
    }, 60_000);
  });
  after(async () => {
    await c.destroy();
    if (hostBefore) assert.deepEqual(hostSnapshot(), hostBefore, "the host's interfaces and nft tables must be untouched");
  });

  it("Istio's TestL7JWT: targetRefs Gateway RequestAuthentication (issuers 1, 2), the selector one (issuer 3) ignored, requestPrincipals at the Gateway", async () => {
    const jwks = JSON.stringify(jwksOf(testKey));
    const yaml = [
      RA('default-echo', `targetRefs: [${GATEWAY_REF}]`, `  - issuer: "${ISSUER_1}"\n    jwks: ${jwks}\n  - issuer: "${ISSUER_2}"\n    jwks: ${jwks}\n`),
      // Aimed at the waypoint's pods by label: ambient waypoints ignore selector RequestAuthentications.
      RA('ignored-echo', `selector:\n    matchLabels: {gateway.networking.k8s.io/gateway-name: waypoint}`, `  - issuer: "${ISSUER_3}"\n    jwks: ${jwks}\n`),
      AP(
        'authz-gateway-echo',
        GATEWAY_REF,
        [
          `  - from:`,
          `    - source: {requestPrincipals: ["${ISSUER_1}/sub-1"]}`,
          `    - source: {requestPrincipals: ["${ISSUER_3}/sub-1"]}`,
          `  - to:`,
          `    - operation: {paths: ["/healthz"]}`,
          ``,
        ].join('\n'),
      ),
    ].join('---\n');
    await withConfig(
      yaml,
      async () => {
        const token = (iss: string, sub: string, claims: Record<string, unknown> = {}) => sign(testKey, { iss, sub, ...claims });
        const answers = await expectOutcomes([
          ['no token', { url: 'http://echo/' }, '403 "RBAC: access denied"'],
          ['TokenIssuer1', { url: 'http://echo/', headers: bearer(await token(ISSUER_1, 'sub-1')) }, '200 from echo'],
          ['TokenIssuer3 (its RequestAuthentication is ignored)', { url: 'http://echo/', headers: bearer(await token(ISSUER_3, 'sub-1')) }, '401 "Jwt issuer is not configured"'],
          ['TokenIssuer2 (verified, but not an allowed principal)', { url: 'http://echo/', headers: bearer(await token(ISSUER_2, 'sub-2')) }, '403 "RBAC: access denied"'],
          ['TokenExpired', { url: 'http://echo/', headers: bearer(await token(ISSUER_1, 'sub-1', { iat: now() - 7200, exp: now() - 3600 })) }, '401 "Jwt is expired"'],
          ['/healthz without a token', { url: 'http://echo/healthz' }, '200 "ok\\n"'],
          // The Gateway's policies cover every Service bound to it.
          ['TokenIssuer1 to another Service', { url: 'http://other/', headers: bearer(await token(ISSUER_1, 'sub-1')) }, '200 from echo'],
          ['no token to another Service', { url: 'http://other/' }, '403 "RBAC: access denied"'],
        ]);
        // forwardOriginalToken is false: the Authorization header that carried the token is gone at the backend.
        assert.equal(answers[1]!.headers?.authorization, undefined, `the backend saw ${JSON.stringify(answers[1]!.headers)}`);
      },
      [`RequestAuthentication ${NS}/ignored-echo`],
    );
  });

  it('a JWKS served by a pod in the mesh (jwksUri), RequestAuthentication targeting a Service; a rotated key is accepted without a restart', async () => {
    const jwksUri = `http://jwks.${NS}.svc.cluster.local/jwks.json`;
    const yaml = [
      RA('mesh-jwks', `targetRefs: [${SERVICE_REF('echo')}]`, `  - issuer: "${MESH_ISSUER}"\n    jwksUri: "${jwksUri}"\n`),
      AP('echo-needs-jwt', SERVICE_REF('echo'), `  - from:\n    - source: {requestPrincipals: ["${MESH_ISSUER}/*"]}\n`),
    ].join('---\n');
    await serveJwks(jwksOf(meshKeyA));
    const restartsBefore = Object.fromEntries((await c.pods(NS)).map((p) => [p.name, p.restarts]));
    await withConfig(yaml, async () => {
      const tokenA = await sign(meshKeyA, { iss: MESH_ISSUER, sub: 'alice' });
      const tokenB = await sign(meshKeyB, { iss: MESH_ISSUER, sub: 'bob' });
      await expectOutcomes([
        ['no token', { url: 'http://echo/' }, '403 "RBAC: access denied"'],
        ['key A (in the served JWKS)', { url: 'http://echo/', headers: bearer(tokenA) }, '200 from echo'],
        ['key B (not yet served)', { url: 'http://echo/', headers: bearer(tokenB) }, `401 "Jwks doesn't have key to match kid or alg from Jwt"`],
        ['not a JWT', { url: 'http://echo/', headers: bearer('garbage') }, '401 "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"'],
        // Only the targeted Service authenticates: `other` (same pod) has no RequestAuthentication nor policy.
        ['not a JWT, to the untargeted Service', { url: 'http://other/', headers: bearer('garbage') }, '200 from echo'],
        ['key B, to the untargeted Service', { url: 'http://other/', headers: bearer(tokenB) }, '200 from echo'],
      ]);

      // Rotation: the JWKS now has only key B. A token naming kid mesh-b makes the waypoint fetch the set again.
      await serveJwks(jwksOf(meshKeyB));
      const rotated = await eventually('a token of the rotated key accepted', async () => {
        const a = await sendOne({ url: 'http://echo/rotated', headers: bearer(tokenB) });
        return a.status === 200 ? a : undefined;
      });
      assert.equal(rotated.pod, 'echo');
      // Key A left the set: its token is refused now (its kid is unknown to the new set).
      const [old] = await send([{ url: 'http://echo/old', headers: bearer(tokenA) }]);
      assert.equal(outcome(old!), `401 "Jwks doesn't have key to match kid or alg from Jwt"`, 'a token of the retired key');
      const served = (await c.ok(['logs', `${NS}/jwks`])).split('\n').filter((l) => l.startsWith('served /jwks.json'));
      assert.ok(served.includes('served /jwks.json mesh-a') && served.includes('served /jwks.json mesh-b'), `the jwks pod served both sets: ${JSON.stringify(served)}`);
    });
    const restartsAfter = Object.fromEntries((await c.pods(NS)).map((p) => [p.name, p.restarts]));
    assert.deepEqual(restartsAfter, restartsBefore, 'nothing restarted');
  });

  it('token locations (header with prefix, query parameter, cookie, defaults), outputClaimToHeaders and outputPayloadToHeader at the backend, forwardOriginalToken', async () => {
    const jwks = JSON.stringify(jwksOf(testKey));
    const rules = [
      `  - issuer: "${LOGIN}"`,
      `    jwks: ${jwks}`,
      `    fromHeaders: [{name: x-auth-token, prefix: "Token "}]`,
      `    fromParams: [access]`,
      `    fromCookies: [session]`,
      `    outputPayloadToHeader: x-jwt-payload`,
      `    outputClaimToHeaders:`,
      `    - {header: x-jwt-sub, claim: sub}`,
      `    - {header: x-jwt-team, claim: org.team}`,
      `    - {header: x-jwt-level, claim: level}`,
      `    - {header: x-jwt-missing, claim: nope}`,
      `  - issuer: "${PARTNER}"`,
      `    jwks: ${jwks}`,
      `    forwardOriginalToken: true`,
      `    outputClaimToHeaders: [{header: x-partner, claim: sub}]`,
      ``,
    ].join('\n');
    await withConfig(RA('locations', `targetRefs: [${SERVICE_REF('echo')}]`, rules), async () => {
      const login = await sign(testKey, { iss: LOGIN, sub: 'alice', org: { team: 'books' }, level: 3 });
      const partner = await sign(testKey, { iss: PARTNER, sub: 'bob' });
      const payload = login.split('.')[1]!;
      const answers = await expectOutcomes([
        ['custom header with its prefix', { url: 'http://echo/h', headers: { 'x-auth-token': `Token ${login}`, 'x-jwt-sub': 'mallory' } }, '200 from echo'],
        ['query parameter', { url: `http://echo/q?access=${login}` }, '200 from echo'],
        ['cookie', { url: 'http://echo/c', headers: { cookie: `theme=dark; session=${login}` } }, '200 from echo'],
        ['custom header with another prefix: no token found', { url: 'http://echo/p', headers: { 'x-auth-token': `Bearer ${login}` } }, '200 from echo'],
        ['bearer token of the custom-location issuer: only the other rule looks there', { url: 'http://echo/b1', headers: bearer(login) }, '401 "Jwt issuer is not configured"'],
        ['default location: Authorization bearer', { url: 'http://echo/b2', headers: bearer(partner) }, '200 from echo'],
        ['default location: access_token parameter', { url: `http://echo/d?access_token=${partner}` }, '200 from echo'],
        ['access_token is not a location of the custom rule', { url: `http://echo/d2?access_token=${login}` }, '401 "Jwt issuer is not configured"'],
      ]);
      const [header, query, cookie, wrongPrefix, , bearerB, paramB] = answers.map((a) => a.headers ?? {});
      const outputs = (h: Record<string, string>) => [h['x-jwt-sub'], h['x-jwt-team'], h['x-jwt-level'], h['x-jwt-missing'], h['x-jwt-payload']];
      const want = ['alice', 'books', '3', undefined, payload];
      assert.deepEqual(outputs(header!), want, 'header: the claims and payload, the client’s own x-jwt-sub overwritten');
      assert.deepEqual(outputs(query!), want, 'query parameter');
      assert.deepEqual(outputs(cookie!), want, 'cookie');
      assert.deepEqual(outputs(wrongPrefix!), [undefined, undefined, undefined, undefined, undefined], 'no token found, no outputs');
      assert.equal(header!['x-auth-token'], undefined, 'forwardOriginalToken false: the header that carried the token is removed');
      assert.equal(wrongPrefix!['x-auth-token'], `Bearer ${login}`, 'a header without the prefix is no token, and stays');
      // Envoy (≥ 1.31) removes a query parameter that carried the token, not a cookie.
      assert.equal(answers[1]!.url, '/q');
      assert.equal(cookie!.cookie, `theme=dark; session=${login}`);
      assert.equal(bearerB!.authorization, `Bearer ${partner}`, 'forwardOriginalToken true: Authorization kept');
      assert.deepEqual([bearerB!['x-partner'], bearerB!['x-jwt-sub'], paramB!['x-partner']], ['bob', undefined, 'bob']);
    });
  });

  it('a refused token: 401 with www-authenticate and the access-log line jwt_authn_access_denied{Jwt_is_expired}', async () => {
    const rules = `  - issuer: "${ISSUER_1}"\n    jwks: ${JSON.stringify(jwksOf(testKey))}\n`;
    await withConfig(RA('expiry', `targetRefs: [${GATEWAY_REF}]`, rules), async () => {
      const expired = await sign(testKey, { iss: ISSUER_1, sub: 'sub-1', iat: now() - 7200, exp: now() - 3600 });
      const [refused, tokenless] = await send([{ url: 'http://echo/expired-token?x=1', headers: bearer(expired) }, { url: 'http://echo/no-token' }]);
      assert.equal(outcome(refused!), '401 "Jwt is expired"');
      assert.deepEqual(refused!.responseHeaders, { 'www-authenticate': 'Bearer realm="http://echo/expired-token?x=1", error="invalid_token"', 'content-type': 'text/plain' });
      assert.equal(outcome(tokenless!), '200 from echo', 'no token: passes (no policy requires one)');
      assert.equal(tokenless!.responseHeaders['www-authenticate'], undefined);
      const line = await eventually('the access-log line of the refused request', async () => (await waypointLog()).split('\n').find((l) => l.includes('"GET /expired-token?x=1 HTTP/1.1"')), 10_000);
      assert.match(line, /" 401 - jwt_authn_access_denied\{Jwt_is_expired\} /);
    });
  });
});
