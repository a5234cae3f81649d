// RequestAuthentication at the waypoint, fed over xDS as the control plane sends it, with keys the test generates:
// a token in its places (Authorization bearer, a named header, query parameter or cookie) is verified against an
// inline JWKS or one the waypoint fetches through the mesh from a Service's pods; a request without a token passes
// (authorization decides); a present token that fails is refused with Envoy's status, body and www-authenticate; the
// verified payload reaches authorization (requestPrincipals, claims), and the headers the rule asks for reach the
// backend; a rotated JWKS is picked up without a restart; hostile tokens never take the waypoint down.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { TYPE_WAYPOINT, type WaypointJwtRule, type WaypointResource } from '../../src/xds/types.js';
import { APPS, Harness, MeshClient, boundService, eventually, fqdn, policy, waypointResourceName, type HttpResult } from './harness.js';

const ISSUER_1 = 'https://issuer-1.example';
const ISSUER_2 = 'issuer-2@ambit.test';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

interface Key {
  kid: string;
  alg: string;
  privateKey: PrivateKey;
  jwk: JWK;
}

async function key(kid: string, alg: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg } };
}

const jwks = (...keys: Key[]) => JSON.stringify({ keys: keys.map((k) => k.jwk) });

function rule(fields: Partial<WaypointJwtRule>): WaypointJwtRule {
  return {
    issuer: '',
    audiences: [],
    jwksUri: '',
    jwks: '',
    fromHeaders: [],
    fromParams: [],
    fromCookies: [],
    outputPayloadToHeader: '',
    forwardOriginalToken: false,
    outputClaimToHeaders: [],
    timeoutMs: 0,
    spaceDelimitedClaims: [],
    ...fields,
  };
}

describe('RequestAuthentication at the waypoint', () => {
  let h: Harness;
  let client: MeshClient;
  let k1: Key;
  let k2: Key;
  let k3: Key;
  let impostor: Key;
  const now = () => Math.floor(Date.now() / 1000);

  const sign = (k: Key, claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    new SignJWT(claims).setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'JWT', ...header }).sign(k.privateKey);
  const token1 = (claims: Record<string, unknown> = {}) => sign(k1, { iss: ISSUER_1, sub: 'alice', aud: 'shop', exp: now() + 600, ...claims });
  const get = (path: string, headers: Record<string, string> = {}): Promise<HttpResult> => client.http1(h.authority('echo', 80), { path, headers: { host: fqdn('echo'), ...headers } });
  /** The request an echo endpoint got for `path` (each test request has a path of its own). */
  const seen = (path: string) => {
    const r = [h.backend('echoA'), h.backend('echoB')].flatMap((b) => b.requests).find((x) => x.url === path);
    assert.ok(r, `an echo endpoint got ${path}`);
    return r;
  };

  /** Sends the echo Service with the RequestAuthentication (and policies), waits until the waypoint has them. */
  async function configure(rules: WaypointJwtRule[], policies: Record<string, WaypointResource> = {}): Promise<void> {
    const [name, svc] = Object.entries(boundService('echo', ['apps/deny-delete', ...Object.values(policies).map((p) => `${p.policy!.namespace}/${p.policy!.name}`)]))[0]! as [string, WaypointResource];
    const ra = waypointResourceName('authn', APPS, 'jwt');
    h.source.set(TYPE_WAYPOINT, { [name]: { service: { ...svc.service!, requestAuthentications: [`${APPS}/jwt`] } }, [ra]: { requestAuthentication: { name: 'jwt', namespace: APPS, rules } }, ...policies });
    await h.waitForConfig('the request authentication', (dump) => {
      const ras = dump.requestAuthentications as { rules: WaypointJwtRule[] }[];
      const bound = (dump.boundServices as { hostname: string; policies: string[]; requestAuthentications?: string[] }[]).find((s) => s.hostname === fqdn('echo'));
      return ras.length === 1 && JSON.stringify(ras[0]!.rules) === JSON.stringify(rules) && bound?.requestAuthentications?.length === 1 && bound.policies.length === 1 + Object.keys(policies).length;
    });
  }

  before(async () => {
    [k1, k2, k3, impostor] = await Promise.all([key('k1', 'RS256'), key('k2', 'ES256'), key('k3', 'EdDSA'), key('k1', 'RS256')]);
    h = await Harness.start();
    client = await MeshClient.dial(h);
    // The echo Service's pods serve the second issuer's JWKS: the waypoint fetches it through the mesh.
    for (const b of [h.backend('echoA'), h.backend('echoB')]) b.documents.set('/jwks.json', jwks(k2));
  });

  after(async () => {
    client?.close();
    await h?.close();
  });

  const RULES = () => [
    rule({ issuer: ISSUER_1, audiences: ['shop', 'books'], jwks: jwks(k1) }),
    rule({
      issuer: ISSUER_2,
      jwksUri: `http://${fqdn('echo')}/jwks.json`,
      fromHeaders: [{ name: 'x-jwt-assertion', prefix: '' }],
      fromParams: ['token'],
      fromCookies: ['session'],
      forwardOriginalToken: true,
      outputPayloadToHeader: 'x-jwt-payload',
      outputClaimToHeaders: [
        { header: 'x-user', claim: 'sub' },
        { header: 'x-team', claim: 'org.team' },
        { header: 'x-admin', claim: 'admin' },
        { header: 'x-level', claim: 'level' },
        { header: 'x-missing', claim: 'nope' },
      ],
    }),
  ];

  it('a request without a token passes; a valid bearer token passes and is removed before the backend', async () => {
    await configure(RULES());
    assert.equal((await get('/none')).status, 200);
    const r = await get('/bearer', { authorization: `Bearer ${await token1()}` });
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(seen('/bearer').headers.authorization, undefined, 'forwardOriginalToken false: the token header is removed');
  });

  it('every token present must verify; output headers a client sends are removed; a query token not forwarded is removed', async () => {
    await configure(RULES());
    const good = await token1();
    const forged = await sign(impostor, { iss: ISSUER_1, sub: 'mallory', aud: 'shop', exp: now() + 600 });
    const two = await get(`/two?access_token=${forged}`, { authorization: `Bearer ${good}` });
    assert.deepEqual([two.status, two.body.toString()], [401, 'Jwt verification fails'], 'a second, forged token in the query');
    const posing = await get('/posing', { 'x-user': 'admin', 'x-jwt-payload': 'e30' });
    assert.equal(posing.status, 200);
    assert.deepEqual([seen('/posing').headers['x-user'], seen('/posing').headers['x-jwt-payload']], [undefined, undefined], 'no token: the rule’s output headers are removed anyway');
    assert.equal((await get(`/query-token?a=1&access_token=${good}&b=2`)).status, 200);
    seen('/query-token?a=1&b=2');
  });

  it('refuses a token that fails with Envoy’s status, body, www-authenticate and details', async () => {
    await configure(RULES());
    const cases: [string, Promise<string> | string, number, string][] = [
      ['expired', token1({ exp: now() - 120 }), 401, 'Jwt is expired'],
      ['not yet valid', token1({ nbf: now() + 600 }), 401, 'Jwt not yet valid'],
      ['wrong audience', token1({ aud: ['other'] }), 403, 'Audiences in Jwt are not allowed'],
      ['unknown issuer', token1({ iss: 'https://elsewhere.example' }), 401, 'Jwt issuer is not configured'],
      ['bad signature', sign(impostor, { iss: ISSUER_1, sub: 'alice', aud: 'shop', exp: now() + 600 }), 401, 'Jwt verification fails'],
      ['unknown key id', sign(k1, { iss: ISSUER_1, sub: 'alice', aud: 'shop' }, { kid: 'other' }), 401, "Jwks doesn't have key to match kid or alg from Jwt"],
      ['two sections', 'abc.def', 401, 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections'],
      ['header not JSON', `${Buffer.from('nope').toString('base64url')}.e30.c2ln`, 401, 'Jwt header is an invalid JSON'],
      ['no alg', `${Buffer.from('{"typ":"JWT"}').toString('base64url')}.e30.c2ln`, 401, 'Jwt header [alg] field is required and must be a string'],
      ['alg none', `${Buffer.from('{"alg":"none"}').toString('base64url')}.e30.c2ln`, 401, 'Jwt header [alg] is not supported'],
      ['exp not a number', token1({ exp: 'soon' }), 401, 'Jwt payload [exp] field is not an integer'],
    ];
    for (const [what, t, status, body] of cases) {
      const mark = h.accessLog.length;
      const r = await get(`/refused?case=${what.replaceAll(' ', '-')}`, { authorization: `Bearer ${await t}` });
      assert.deepEqual([r.status, r.body.toString(), r.headers['content-type']], [status, body, 'text/plain'], what);
      assert.equal(r.headers['www-authenticate'], `Bearer realm="http://${fqdn('echo')}/refused?case=${what.replaceAll(' ', '-')}", error="invalid_token"`, what);
      const line = await eventually(`access-log line for ${what}`, () => h.logged(`case=${what.replaceAll(' ', '-')} HTTP/1.1"`, mark)[0]);
      assert.ok(line.includes(` ${status} - jwt_authn_access_denied{${body.replaceAll(' ', '_')}} `), line);
    }
  });

  it('finds tokens in the rule’s header, query parameter and cookie; the JWKS comes from the mesh; the outputs reach the backend', async () => {
    await configure(RULES());
    const t2 = await sign(k2, { iss: ISSUER_2, sub: 'bob', org: { team: 'books' }, admin: true, level: 3 });
    for (const [where, headers, path] of [
      ['header', { 'x-jwt-assertion': t2 }, '/h'],
      ['query', {}, `/q?token=${t2}`],
      ['cookie', { cookie: `a=1; session=${t2}` }, '/c'],
    ] as const) {
      const r = await get(path, headers);
      assert.equal(r.status, 200, `${where}: ${r.body.toString()}`);
      const got = seen(path).headers;
      assert.deepEqual(
        [got['x-user'], got['x-team'], got['x-admin'], got['x-level'], got['x-missing']],
        ['bob', 'books', 'true', '3', undefined],
        where,
      );
      assert.equal(got['x-jwt-payload'], t2.split('.')[1], `${where}: the payload segment`);
    }
    assert.equal(seen('/c').headers['x-jwt-assertion'], undefined, 'the cookie request carried no header');
    assert.equal(seen('/h').headers['x-jwt-assertion'], t2, 'forwardOriginalToken keeps the token');
    // The first issuer's default location is not this rule's: a bearer token of issuer 2 is not its token.
    const wrongPlace = await get('/wrong', { authorization: `Bearer ${t2}` });
    assert.deepEqual([wrongPlace.status, wrongPlace.body.toString()], [401, 'Jwt issuer is not configured']);
  });

  it('authorization sees the verified token: requestPrincipals and claims; no token is a 403 where a principal is required', async () => {
    const allow = policy(APPS, 'need-jwt', 'ALLOW', [
      { from: [{ source: { requestPrincipals: [`${ISSUER_1}/alice`] } }] },
      { when: [{ key: 'request.auth.claims[groups]', values: ['admins'] }] },
      { to: [{ operation: { paths: ['/healthz'] } }] },
    ]);
    await configure(RULES(), allow);
    assert.equal((await get('/healthz')).status, 200);
    const none = await get('/private');
    assert.deepEqual([none.status, none.body.toString()], [403, 'RBAC: access denied']);
    assert.equal((await get('/private', { authorization: `Bearer ${await token1()}` })).status, 200);
    assert.equal((await get('/private', { authorization: `Bearer ${await token1({ sub: 'carol' })}` })).status, 403);
    assert.equal((await get('/private', { authorization: `Bearer ${await token1({ sub: 'carol', groups: ['users', 'admins'] })}` })).status, 200);
  });

  it('picks up a rotated JWKS without a restart; a JWKS that cannot be fetched refuses its issuer’s tokens, not tokenless requests', async () => {
    await configure(RULES());
    const t3 = await sign(k3, { iss: ISSUER_2, sub: 'dave' });
    assert.equal((await get('/rot', { 'x-jwt-assertion': t3 })).status, 401, 'k3 is not in the set yet');
    for (const b of [h.backend('echoA'), h.backend('echoB')]) b.documents.set('/jwks.json', jwks(k2, k3));
    // A token naming a key id the set lacks makes the waypoint fetch the set again (at most every few seconds).
    await eventually('the rotated key is accepted', async () => (await get('/rot', { 'x-jwt-assertion': t3 })).status === 200 || undefined, { timeoutMs: 15_000 });

    const missing = RULES();
    missing[1] = { ...missing[1]!, jwksUri: `http://${fqdn('echo')}/no-such-jwks.json`, issuer: 'issuer-3@ambit.test' };
    await configure(missing);
    const t = await sign(k2, { iss: 'issuer-3@ambit.test', sub: 'erin' });
    const r = await get('/unfetchable', { 'x-jwt-assertion': t });
    assert.deepEqual([r.status, r.body.toString()], [401, 'Jwks remote fetch is failed']);
    assert.equal((await get('/unfetchable')).status, 200);
    assert.ok(h.logLines.some((l) => l.includes('failed to fetch JWKS') && l.includes('no-such-jwks.json')), 'the failure is logged');
    const status = (h.waypoint.configDump() as { jwks: { uri: string; keys: number; lastError?: string }[] }).jwks;
    assert.deepEqual(
      status.map((j) => [j.uri.replace(fqdn('echo'), 'echo'), j.keys, j.lastError !== undefined]),
      [
        ['http://echo/jwks.json', 2, false],
        ['http://echo/no-such-jwks.json', 0, true],
      ],
      'the waypoint’s config dump shows each JWKS and the failing one’s error',
    );
  });

  it('hostile tokens: every malformed token is a 401, and the waypoint keeps serving', async () => {
    await configure(RULES());
    const valid = await token1();
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
    const alphabet = 'AZaz09-_.=+/~ %"\\{}';
    for (let i = 0; i < 150; i++) {
      const chars = [...valid];
      const edits = 1 + rand(6);
      for (let e = 0; e < edits; e++) {
        const at = rand(chars.length);
        if (rand(3) === 0) chars.splice(at, 1);
        else chars[at] = alphabet[rand(alphabet.length)]!;
      }
      const t = chars.join('').replace(/[ %"\\{}]/g, 'x');
      if (t === valid) continue;
      const r = await get('/fuzz', { authorization: `Bearer ${t}` });
      // Refused, as a 401 or, when a mutation renamed the audience claim, Envoy's 403; a change in a segment's unused
      // last bits (or after a character the extractor stops at) leaves the token valid.
      const body = r.body.toString();
      assert.ok(r.status === 401 || (r.status === 403 && body === 'Audiences in Jwt are not allowed') || r.status === 200, `${t}: ${r.status} ${body}`);
    }
    assert.equal((await get('/after-fuzz', { authorization: `Bearer ${valid}` })).status, 200);
  });
});
