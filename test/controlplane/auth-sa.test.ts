// Service account tokens as a waypoint shows them to the control plane: Kubernetes' bound tokens (audience istio-ca,
// an expiry, `sub: system:serviceaccount:<ns>:<sa>`, the pod binding under `kubernetes.io`) signed by the local
// cluster's ServiceAccountIssuer and verified by ServiceAccountTokenAuthenticator against the issuer's JWKS file and the
// pod's existence, every refusal an AuthenticationError saying why; and the CA issuing such a caller its own identity
// only (through SecretManager over TLS).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, base64url, decodeJwt } from 'jose';
import type { Pod } from '../../src/api/types.js';
import { AnyAuthenticator, AuthenticationError, ISTIO_TOKEN, ServiceAccountTokenAuthenticator, TokenFileAuthenticator } from '../../src/controlplane/auth.js';
import { MeshCa } from '../../src/controlplane/ca.js';
import { ControlPlaneServer } from '../../src/controlplane/server.js';
import { verifyCertificateChain } from '../../src/identity/verify.js';
import { ServiceAccountIssuer, type TokenRequestSpec, type TokenSubject } from '../../src/local/tokens.js';
import { AmbientIndex } from '../../src/model/ambient.js';
import { ConfigStore } from '../../src/model/store.js';
import { SecretManager } from '../../src/xds/ca-client.js';
import { RecordingLog } from '../ztunnel/helpers.js';
import { CapturedLog, TOKENS, tempDir } from './helpers.js';

const SUBJECT: TokenSubject = { namespace: 'shop', serviceAccount: 'wp', serviceAccountUid: 'uid-sa-wp', pod: { name: 'wp-1', uid: 'uid-wp-1' }, node: 'node-1' };
const CLAIMS = {
  'kubernetes.io': { namespace: 'shop', pod: { name: 'wp-1', uid: 'uid-wp-1' }, serviceaccount: { name: 'wp' }, node: { name: 'node-1' } },
};
/** What the waypoint's projected istio-token volume asks for. */
const ISTIO_REQUEST: TokenRequestSpec = { audiences: ['istio-ca'], expirationSeconds: ISTIO_TOKEN.expirationSeconds };

function pod(name: string, uid: string): Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop', uid }, spec: { serviceAccountName: 'wp', containers: [{ name: 'istio-proxy' }] } };
}

/** Asserts that `auth` refuses the token with an AuthenticationError whose message matches `why`. */
async function assertRefused(auth: { authenticate(token: string): Promise<unknown> }, token: string, why: RegExp): Promise<void> {
  await assert.rejects(auth.authenticate(token), (e: Error) => {
    assert.ok(e instanceof AuthenticationError, `${e.name}: ${e.message}`);
    assert.match(e.message, why);
    return true;
  });
}

describe('ServiceAccountIssuer', () => {
  const { dir, cleanup } = tempDir('sa-issuer');
  after(cleanup);

  it("signs Kubernetes' bound token claims with the audience and lifetime asked for", async () => {
    const issuer = await ServiceAccountIssuer.load(join(dir, 'sa-key.pem'), join(dir, 'sa-jwks.json'));
    const now = Date.now();
    const claims = decodeJwt(await issuer.token(SUBJECT, { audiences: ['vault'], expirationSeconds: 600 }, now));
    const iat = Math.floor(now / 1000);
    assert.match(String(claims.jti), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const { jti: _, ...rest } = claims;
    assert.deepEqual(rest, {
      aud: ['vault'],
      exp: iat + 600,
      iat,
      nbf: iat,
      iss: 'https://kubernetes.default.svc.cluster.local',
      sub: 'system:serviceaccount:shop:wp',
      'kubernetes.io': { namespace: 'shop', pod: { name: 'wp-1', uid: 'uid-wp-1' }, serviceaccount: { name: 'wp', uid: 'uid-sa-wp' }, node: { name: 'node-1' } },
    });
    // Every token is a new one, as each TokenRequest is.
    assert.notEqual(decodeJwt(await issuer.token(SUBJECT)).jti, claims.jti);
    // By default, what Istio's proxies are given: audience istio-ca for 12 hours.
    const istio = decodeJwt(await issuer.token(SUBJECT));
    assert.deepEqual([istio.aud, istio.exp! - istio.iat!], [['istio-ca'], 43200]);
  });
});

describe('ServiceAccountTokenAuthenticator', () => {
  const { dir, cleanup } = tempDir('sa-auth');
  const keyPath = join(dir, 'sa-key.pem');
  const jwksPath = join(dir, 'sa-jwks.json');
  const store = new ConfigStore();
  const index = new AmbientIndex(store);
  let issuer: ServiceAccountIssuer;
  let other: ServiceAccountIssuer;
  let auth: ServiceAccountTokenAuthenticator;

  /** A token signed with the issuer's own key, with claims and header as the case needs (`exp: null`: none). */
  async function forge(claims: Record<string, unknown>, opts: { iss?: string; aud?: string; sub?: string; iat?: number; exp?: number | null } = {}): Promise<string> {
    const kid = (JSON.parse(readFileSync(jwksPath, 'utf8')) as { keys: { kid: string }[] }).keys[0]!.kid;
    const now = Math.floor(Date.now() / 1000);
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid })
      .setIssuer(opts.iss ?? 'https://kubernetes.default.svc.cluster.local')
      .setAudience(opts.aud ?? 'istio-ca')
      .setSubject(opts.sub ?? 'system:serviceaccount:shop:wp')
      .setIssuedAt(opts.iat ?? now);
    if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? now + 600);
    return jwt.sign(createPrivateKey(readFileSync(keyPath, 'utf8')));
  }

  before(async () => {
    store.apply([pod('wp-1', 'uid-wp-1')]);
    issuer = await ServiceAccountIssuer.load(keyPath, jwksPath);
    other = await ServiceAccountIssuer.load(join(dir, 'other-key.pem'), join(dir, 'other-jwks.json'));
    auth = new ServiceAccountTokenAuthenticator(jwksPath, (ns, name, uid) => index.hasPod(ns, name, uid));
  });
  after(() => {
    index.close();
    cleanup();
  });

  it('accepts a fresh token bound to an existing pod', async () => {
    assert.equal(auth.lastError, undefined);
    assert.deepEqual(await auth.authenticate(await issuer.token(SUBJECT)), { serviceAccount: { namespace: 'shop', name: 'wp', pod: { name: 'wp-1', uid: 'uid-wp-1' } } });
    // Still good just before it expires.
    assert.ok(await auth.authenticate(await issuer.token(SUBJECT, ISTIO_REQUEST, Date.now() - (ISTIO_REQUEST.expirationSeconds - 30) * 1000)));
  });

  it('leaves an opaque token (a node token) to the other authenticators', async () => {
    assert.equal(await auth.authenticate('token-node-1'), undefined);
  });

  const now = () => Math.floor(Date.now() / 1000);
  const { pod: _, ...unbound } = CLAIMS['kubernetes.io'];
  const refusals: [string, () => Promise<string>, RegExp][] = [
    ['expired', () => issuer.token(SUBJECT, ISTIO_REQUEST, Date.now() - (ISTIO_REQUEST.expirationSeconds + 60) * 1000), /^service account token has expired$/],
    ['not yet valid', () => issuer.token(SUBJECT, ISTIO_REQUEST, Date.now() + 600_000), /^service account token is not valid yet$/],
    ['without an expiry (a legacy, unbounded token)', () => forge(CLAIMS, { exp: null }), /^service account token has no expiry \("exp" claim\)/],
    ['bound to no pod (a plain TokenRequest)', () => forge({ 'kubernetes.io': unbound }), /^service account token is not bound to a pod/],
    ['wrong audience', () => forge(CLAIMS, { aud: 'kubernetes' }), /^invalid service account token: unexpected "aud" claim value$/],
    ["the API server's own audience (a source without one)", () => issuer.token(SUBJECT, { audiences: ['https://kubernetes.default.svc.cluster.local'], expirationSeconds: 3600 }), /unexpected "aud" claim value$/],
    ['wrong issuer', () => forge(CLAIMS, { iss: 'https://evil.example' }), /^invalid service account token: unexpected "iss" claim value$/],
    ['signed by another key', () => other.token(SUBJECT), /^invalid service account token: /],
    ['subject is not a service account', () => forge(CLAIMS, { sub: 'system:node:node-1' }), /^service account token subject "system:node:node-1" is not system:serviceaccount:<namespace>:<name>$/],
    ['subject names another namespace', () => forge(CLAIMS, { sub: 'system:serviceaccount:other:wp' }), /does not match its "kubernetes\.io" claims \(shop\/wp\)$/],
    ['subject names another service account', () => forge(CLAIMS, { sub: 'system:serviceaccount:shop:admin' }), /does not match its "kubernetes\.io" claims \(shop\/wp\)$/],
    ['no kubernetes.io claims', () => forge({}), /^service account token has no "kubernetes\.io" claims$/],
    ['kubernetes.io claims without a service account', () => forge({ 'kubernetes.io': { namespace: 'shop' } }), /^service account token has an invalid claim kubernetes\.io\.serviceaccount: /],
    ['pod claim without a uid', () => forge({ 'kubernetes.io': { ...CLAIMS['kubernetes.io'], pod: { name: 'wp-1' } } }), /^service account token has an invalid claim kubernetes\.io\.pod\.uid: /],
    ['bound to a pod that does not exist', () => issuer.token({ ...SUBJECT, pod: { name: 'wp-2', uid: 'uid-wp-2' } }), /^pod shop\/wp-2 has been deleted$/],
    ['bound to an older pod of the same name', () => issuer.token({ ...SUBJECT, pod: { name: 'wp-1', uid: 'uid-wp-0' } }), /^pod shop\/wp-1 has been deleted$/],
    [
      'unsigned (alg none)',
      async () => `${base64url.encode(JSON.stringify({ alg: 'none' }))}.${base64url.encode(JSON.stringify({ ...CLAIMS, sub: 'system:serviceaccount:shop:wp', aud: 'istio-ca', iss: 'https://kubernetes.default.svc.cluster.local', exp: now() + 60 }))}.`,
      /^invalid service account token: /,
    ],
    ['tampered payload', async () => {
      const [h, , sig] = (await issuer.token(SUBJECT)).split('.');
      return `${h}.${base64url.encode(JSON.stringify({ ...CLAIMS, sub: 'system:serviceaccount:shop:admin' }))}.${sig}`;
    }, /^invalid service account token: signature verification failed$/],
    // Kubernetes refuses these ("service account token is issued in the future", pkg/serviceaccount/claims.go);
    // jose checks `iat` only when asked for a maximum token age.
    ['issued in the future (no nbf)', () => forge(CLAIMS, { iat: now() + 3600, exp: now() + 7200 }), /^service account token is issued in the future$/],
  ];
  for (const [name, token, why] of refusals) it(`refuses: ${name}`, async () => assertRefused(auth, await token(), why));

  it('refuses the token once its pod is gone', async () => {
    const token = await issuer.token(SUBJECT);
    assert.ok(await auth.authenticate(token));
    store.remove(['Pod/shop/wp-1']);
    await assertRefused(auth, token, /^pod shop\/wp-1 has been deleted$/);
    store.apply([pod('wp-1', 'uid-wp-1')]);
    assert.ok(await auth.authenticate(token));
  });

  it('picks up a rewritten JWKS file; a broken one keeps the last good keys', async () => {
    const before = await issuer.token(SUBJECT);
    const after = await other.token(SUBJECT);
    // Replaced the way a key rotation writes it: a new file renamed over the old one.
    const replace = (text: string) => {
      writeFileSync(`${jwksPath}.new`, text);
      renameSync(`${jwksPath}.new`, jwksPath);
    };
    const firstKeys = readFileSync(jwksPath, 'utf8');
    const otherKeys = readFileSync(join(dir, 'other-jwks.json'), 'utf8');
    replace(otherKeys);
    assert.ok(await auth.authenticate(after));
    await assertRefused(auth, before, /^invalid service account token: /);

    replace('{"keys": [');
    assert.ok(await auth.authenticate(after), 'the last good keys stay in force');
    assert.match(auth.lastError ?? '', /^invalid service account issuer keys .*sa-jwks\.json: /);

    replace(firstKeys);
    assert.ok(await auth.authenticate(before));
    await assertRefused(auth, after, /^invalid service account token: /);
    assert.equal(auth.lastError, undefined);
  });

  it('a missing JWKS file is not fatal: every token is refused and lastError says why', async () => {
    const missing = new ServiceAccountTokenAuthenticator(join(dir, 'nope.json'), () => true);
    assert.match(missing.lastError ?? '', /^cannot read service account issuer keys .*nope\.json: ENOENT/);
    await assertRefused(missing, await issuer.token(SUBJECT), /^service account tokens cannot be verified: cannot read service account issuer keys .*nope\.json: ENOENT/);
  });

  it('AnyAuthenticator: node tokens and service account tokens side by side, a refusal passed on', async () => {
    const tokenFile = join(dir, 'node-tokens.json');
    writeFileSync(tokenFile, JSON.stringify(TOKENS));
    const any = new AnyAuthenticator([new TokenFileAuthenticator(tokenFile), auth]);
    assert.deepEqual(await any.authenticate('token-node-2'), { node: 'node-2' });
    assert.deepEqual((await any.authenticate(await issuer.token(SUBJECT)))?.serviceAccount?.name, 'wp');
    assert.equal(await any.authenticate('token-node-9'), undefined);
    await assertRefused(any, await forge({ 'kubernetes.io': unbound }), /^service account token is not bound to a pod/);
  });
});

describe('CertificateService for a service account caller', () => {
  const { dir, cleanup } = tempDir('sa-ca');
  const serverLog = new CapturedLog();
  const log = new RecordingLog();
  let server: ControlPlaneServer;
  let secrets: SecretManager;
  const OWN = 'spiffe://cluster.local/ns/shop/sa/wp';

  before(async () => {
    const store = new ConfigStore();
    store.apply([pod('wp-1', 'uid-wp-1')]);
    const index = new AmbientIndex(store);
    const jwks = join(dir, 'sa-jwks.json');
    const issuer = await ServiceAccountIssuer.load(join(dir, 'sa-key.pem'), jwks);
    await issuer.writeToken(join(dir, 'istio-token'), SUBJECT);
    const ca = await MeshCa.load({ trustDomain: 'cluster.local', stateDir: dir });
    server = await ControlPlaneServer.start({
      ca,
      authenticator: new ServiceAccountTokenAuthenticator(jwks, (ns, name, uid) => index.hasPod(ns, name, uid)),
      xdsTypes: [],
      // Were the caller judged as a node, it could have nothing: service accounts are not placed on nodes.
      placement: { identitiesOnNode: () => new Set() },
      listen: '127.0.0.1:0',
      debugListen: '127.0.0.1:0',
      log: serverLog,
    });
    secrets = new SecretManager({
      caAddress: `127.0.0.1:${server.port}`,
      serverName: 'istiod.istio-system.svc',
      rootPem: ca.rootPem,
      tokenFile: join(dir, 'istio-token'),
      ttlSeconds: 3600,
      log: log.logger('cert'),
      initialRetryMs: 60_000,
      requestTimeoutMs: 5000,
    });
  });
  after(async () => {
    secrets?.close();
    await server?.close();
    cleanup();
  });

  it('issues the caller its own identity', async () => {
    const cert = await secrets.fetch(OWN);
    assert.equal(cert.identity, OWN);
    verifyCertificateChain(cert.chainPem, secrets.rootPems());
    assert.ok(serverLog.has(`issued certificate for ${OWN} to serviceaccount shop/wp`));
  });

  const others = ['spiffe://cluster.local/ns/shop/sa/admin', 'spiffe://cluster.local/ns/other/sa/wp'];
  for (const identity of others) {
    it(`refuses ${identity}`, async () => {
      await assert.rejects(secrets.fetch(identity), (e: Error) => {
        assert.ok(
          e.message.endsWith(`PERMISSION_DENIED: serviceaccount shop/wp may only request a certificate for its own identity, not ${identity}`),
          e.message,
        );
        return true;
      });
    });
  }

  it('refuses another trust domain before anything else', async () => {
    await assert.rejects(secrets.fetch('spiffe://evil.example/ns/shop/sa/wp'), /PERMISSION_DENIED: serviceaccount shop\/wp may not request spiffe:\/\/evil\.example\/ns\/shop\/sa\/wp: trust domain evil\.example is not this mesh's cluster\.local$/);
  });

  it('refuses an expired token as unauthenticated, saying why', async () => {
    const issuer = await ServiceAccountIssuer.load(join(dir, 'sa-key.pem'), join(dir, 'sa-jwks.json'));
    writeFileSync(join(dir, 'istio-token'), (await issuer.token(SUBJECT, ISTIO_REQUEST, Date.now() - 2 * ISTIO_REQUEST.expirationSeconds * 1000)) + '\n');
    await assert.rejects(secrets.fetch('spiffe://cluster.local/ns/shop/sa/x'), /UNAUTHENTICATED: request authenticate failure: service account token has expired$/);
  });
});
