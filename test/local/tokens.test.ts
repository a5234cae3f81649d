// The kubelet's share of projected service account tokens: when a token is refreshed, and ProjectedTokenWriter writing
// each of a pod's tokens to its file with the audience and lifetime its source asks for, rewriting it at 80 % of its
// lifetime until stopped.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { ProjectedTokenWriter, ServiceAccountIssuer, tokenRefreshDelayMs, type TokenSubject } from '../../src/local/tokens.js';
import { eventually } from '../support/eventually.js';

const SUBJECT: TokenSubject = { namespace: 'shop', serviceAccount: 'wp', serviceAccountUid: 'uid-sa', pod: { name: 'wp-1', uid: 'uid-wp-1' }, node: 'node-1' };

describe('tokenRefreshDelayMs', () => {
  it("is the kubelet's: 80 % of the lifetime, at most a day", () => {
    assert.equal(tokenRefreshDelayMs(3600), 2880 * 1000);
    assert.equal(tokenRefreshDelayMs(43200), 34560 * 1000);
    assert.equal(tokenRefreshDelayMs(2 ** 32), 24 * 3600 * 1000);
  });
});

describe('ProjectedTokenWriter', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-tokens-'));
  const writers: ProjectedTokenWriter[] = [];
  const logged: string[] = [];
  after(() => {
    for (const w of writers) w.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const issuer = () => ServiceAccountIssuer.load(join(dir, 'sa.key'), join(dir, 'sa.jwks.json'));
  const writer = async (tokens: ConstructorParameters<typeof ProjectedTokenWriter>[2]) => {
    const w = new ProjectedTokenWriter(await issuer(), SUBJECT, tokens, (line) => logged.push(line));
    writers.push(w);
    return w;
  };
  const claims = (file: string) => decodeJwt(readFileSync(file, 'utf8').trim());

  it("writes every token of the pod, with its audience and lifetime, and the kubelet's modes and owner", async () => {
    const istio = join(dir, 'pod-a/volumes/istio-token/istio-token');
    const vault = join(dir, 'pod-a/volumes/other/sub/dir/vault-token');
    await (
      await writer([
        { file: istio, request: { audiences: ['istio-ca'], expirationSeconds: 43200 } },
        { file: vault, request: { audiences: ['vault'], expirationSeconds: 600 }, owner: 1000 },
      ])
    ).start();
    const a = claims(istio);
    const b = claims(vault);
    assert.deepEqual([a.aud, a.exp! - a.iat!, a.sub], [['istio-ca'], 43200, 'system:serviceaccount:shop:wp']);
    assert.deepEqual([b.aud, b.exp! - b.iat!], [['vault'], 600]);
    assert.deepEqual(a['kubernetes.io'], { namespace: 'shop', pod: { name: 'wp-1', uid: 'uid-wp-1' }, serviceaccount: { name: 'wp', uid: 'uid-sa' }, node: { name: 'node-1' } });
    // Without an owner (containers of different users): the projected volume's default mode, 0644, root's.
    assert.deepEqual([statSync(istio).mode & 0o777, statSync(istio).uid], [0o644, 0]);
    // With one (all containers run as uid 1000): 0600 and that user's; the group is left alone.
    assert.deepEqual([statSync(vault).mode & 0o777, statSync(vault).uid, statSync(vault).gid], [0o600, 1000, 0]);
    // The volume's directories can be traversed by that user.
    assert.equal(statSync(join(dir, 'pod-a/volumes/other/sub/dir')).mode & 0o777, 0o755);
  });

  it('rewrites a token once 80 % of its lifetime has passed, and no more once stopped', async () => {
    // A one-second token (shorter than Kubernetes allows, which only the API's validation refuses) is rewritten after
    // 0.8 s; the stopped writer's token, written at the same moment, stays the first one.
    const running = join(dir, 'pod-b/volumes/t/token');
    const stopped = join(dir, 'pod-c/volumes/t/token');
    const request = { audiences: ['istio-ca'], expirationSeconds: 1 };
    const [live, halted] = [await writer([{ file: running, request }]), await writer([{ file: stopped, request }])];
    await Promise.all([live.start(), halted.start()]);
    halted.stop();
    const first = claims(stopped).jti;
    const seen = new Set([claims(running).jti]);
    await eventually('the running writer to refresh its token twice', () => {
      seen.add(claims(running).jti);
      return seen.size >= 3;
    });
    assert.equal(claims(stopped).jti, first, 'a stopped writer writes nothing more');
    assert.deepEqual(logged, []);
  });
});

describe('ServiceAccountIssuer.review (TokenReview)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-review-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const alive = (ns: string, name: string) => (ns === 'shop' && name === 'wp-1' ? 'uid-wp-1' : undefined);

  it("authenticates its own token as the service account, with the pod and node in extra, as istiod's CA needs", async () => {
    const issuer = await ServiceAccountIssuer.load(join(dir, 'sa.key'), join(dir, 'sa.jwks.json'));
    const token = await issuer.token(SUBJECT, { audiences: ['istio-ca'], expirationSeconds: 3600 });
    const review = (await issuer.review(token, ['istio-ca'], alive)) as { authenticated: boolean; user: { username: string; groups: string[]; extra: Record<string, string[]> }; audiences: string[] };
    assert.equal(review.authenticated, true);
    assert.equal(review.user.username, 'system:serviceaccount:shop:wp');
    assert.deepEqual(review.user.groups, ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated']);
    assert.deepEqual(review.user.extra['authentication.kubernetes.io/pod-name'], ['wp-1']);
    assert.deepEqual(review.user.extra['authentication.kubernetes.io/pod-uid'], ['uid-wp-1']);
    assert.deepEqual(review.user.extra['authentication.kubernetes.io/node-name'], ['node-1']);
    assert.deepEqual(review.audiences, ['istio-ca']);
  });

  it('refuses another audience, a token whose pod is gone, a tampered token and one from another issuer key', async () => {
    const issuer = await ServiceAccountIssuer.load(join(dir, 'sa.key'), join(dir, 'sa.jwks.json'));
    const token = await issuer.token(SUBJECT, { audiences: ['istio-ca'], expirationSeconds: 3600 });
    assert.deepEqual(await issuer.review(token, ['other'], alive), { authenticated: false, error: 'token audiences do not match the requested audiences' });
    assert.deepEqual(await issuer.review(token, [], alive), { authenticated: false, error: 'token audiences do not match the requested audiences' }, "without audiences the API server's own is asked");
    assert.deepEqual(await issuer.review(token, ['istio-ca'], () => 'another-uid'), { authenticated: false, error: 'Token has been invalidated' });
    const [h, p, sig] = token.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...decodeJwt(token), sub: 'system:serviceaccount:kube-system:admin' })).toString('base64url')}.${sig}`;
    assert.equal(((await issuer.review(tampered, ['istio-ca'], alive)) as { authenticated: boolean }).authenticated, false);
    assert.ok(p);
    const other = await ServiceAccountIssuer.load(join(dir, 'other.key'), join(dir, 'other.jwks.json'));
    const foreign = await other.token(SUBJECT, { audiences: ['istio-ca'], expirationSeconds: 3600 });
    assert.match(((await issuer.review(foreign, ['istio-ca'], alive)) as { error: string }).error, /^invalid bearer token: /);
  });
});
