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
  const UIDS: Record<string, string> = { 'Pod/shop/wp-1': 'uid-wp-1', 'ServiceAccount/shop/wp': 'uid-sa' };
  const alive = (kind: string, ns: string, name: string) => UIDS[`${kind}/${ns}/${name}`];
  const issuer = () => ServiceAccountIssuer.load(join(dir, 'sa.key'), join(dir, 'sa.jwks.json'));
  const error = async (review: Promise<Record<string, unknown>>) => {
    const r = (await review) as { authenticated: boolean; error?: string };
    assert.equal(r.authenticated, false);
    return r.error;
  };

  it("authenticates its own token as the service account, with the pod and node in extra, as istiod's CA needs", async () => {
    const token = await (await issuer()).token(SUBJECT, { audiences: ['istio-ca'], expirationSeconds: 3600 });
    const review = (await (await issuer()).review(token, ['istio-ca'], alive)) as { authenticated: boolean; user: { username: string; uid: string; groups: string[]; extra: Record<string, string[]> }; audiences: string[] };
    assert.equal(review.authenticated, true);
    assert.equal(review.user.username, 'system:serviceaccount:shop:wp');
    assert.equal(review.user.uid, 'uid-sa');
    assert.deepEqual(review.user.groups, ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated']);
    assert.deepEqual(review.user.extra['authentication.kubernetes.io/pod-name'], ['wp-1']);
    assert.deepEqual(review.user.extra['authentication.kubernetes.io/pod-uid'], ['uid-wp-1']);
    assert.deepEqual(review.user.extra['authentication.kubernetes.io/node-name'], ['node-1']);
    assert.match(review.user.extra['authentication.kubernetes.io/credential-id']![0]!, /^JTI=[0-9a-f-]{36}$/);
    assert.deepEqual(review.audiences, ['istio-ca']);
  });

  it("refuses with kube-apiserver's texts: another audience, a replaced or deleted pod or service account, an expired, tampered or foreign token", async () => {
    const own = await issuer();
    const token = await own.token(SUBJECT, { audiences: ['istio-ca'], expirationSeconds: 3600 });
    assert.equal(await error(own.review(token, ['other', 'more'], alive)), '[invalid bearer token, token audiences ["istio-ca"] is invalid for the target audiences ["other" "more"]]');
    assert.equal(
      await error(own.review(token, [], alive)),
      '[invalid bearer token, token audiences ["istio-ca"] is invalid for the target audiences ["https://kubernetes.default.svc.cluster.local"]]',
      "without audiences the API server's own is asked",
    );
    const without = (key: string) => (kind: string, ns: string, name: string) => (`${kind}/${ns}/${name}` === key ? undefined : alive(kind, ns, name));
    const replaced = (key: string) => (kind: string, ns: string, name: string) => (`${kind}/${ns}/${name}` === key ? 'another-uid' : alive(kind, ns, name));
    assert.equal(await error(own.review(token, ['istio-ca'], without('Pod/shop/wp-1'))), '[invalid bearer token, service account token has been invalidated]');
    assert.equal(await error(own.review(token, ['istio-ca'], replaced('Pod/shop/wp-1'))), '[invalid bearer token, pod UID (another-uid) does not match service account pod ref claim (uid-wp-1)]');
    assert.equal(await error(own.review(token, ['istio-ca'], without('ServiceAccount/shop/wp'))), '[invalid bearer token, serviceaccount "wp" not found]');
    assert.equal(await error(own.review(token, ['istio-ca'], replaced('ServiceAccount/shop/wp'))), '[invalid bearer token, service account UID (another-uid) does not match claim (uid-sa)]');
    const expired = await own.token(SUBJECT, { audiences: ['istio-ca'], expirationSeconds: 600 }, Date.now() - 700_000);
    assert.equal(await error(own.review(expired, ['istio-ca'], alive)), '[invalid bearer token, service account token has expired]');
    const [h, , sig] = token.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...decodeJwt(token), sub: 'system:serviceaccount:kube-system:admin' })).toString('base64url')}.${sig}`;
    assert.match((await error(own.review(tampered, ['istio-ca'], alive)))!, /^\[invalid bearer token, /);
    const other = await ServiceAccountIssuer.load(join(dir, 'other.key'), join(dir, 'other.jwks.json'));
    const foreign = await other.token(SUBJECT, { audiences: ['istio-ca'], expirationSeconds: 3600 });
    assert.match((await error(own.review(foreign, ['istio-ca'], alive)))!, /^\[invalid bearer token, /);
  });
});
