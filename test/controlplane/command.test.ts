// The assembled control plane (what `ambit controlplane` runs) on real files: edits to a watched file reach a
// connected xDS client, a bad edit keeps the last good object, deleting a file removes its objects, and the CA
// authorizes against pods the real model places on nodes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createCsr, generateKeyPair } from '../../src/identity/csr.js';
import type { ReloadReport } from '../../src/controlplane/config-watch.js';
import { runControlPlane, type RunningControlPlane } from '../../src/controlplane/run.js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION } from '../../src/xds/types.js';
import { AdsStream, CapturedLog, TOKENS, createCertificate, tempDir } from './helpers.js';

const NAMESPACE_AND_POD = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    istio.io/dataplane-mode: ambient
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  nodeName: node-1
  serviceAccountName: web
  containers:
    - name: web
      image: ambit:dev
status:
  podIP: 10.244.1.5
`;

const policy = (namespaces: string, action = 'DENY') => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-evil
  namespace: shop
spec:
  action: ${action}
  rules:
    - from:
        - source:
            namespaces: ["${namespaces}"]
`;

describe('ambit controlplane (assembled from files)', () => {
  const { dir, cleanup } = tempDir('cmd');
  const configDir = join(dir, 'config');
  const policyFile = join(configDir, 'policy.yaml');
  const log = new CapturedLog();
  let cp: RunningControlPlane;
  let client: AdsStream;
  let reloads: ReloadReport[] = [];
  let reloadWaiters: ((r: ReloadReport) => void)[] = [];
  const nextReload = () => new Promise<ReloadReport>((resolve) => reloadWaiters.push(resolve));

  // Writes through a temporary file and a rename, as most editors save.
  const save = (path: string, text: string) => {
    writeFileSync(`${path}.tmp`, text);
    renameSync(`${path}.tmp`, path);
  };

  before(async () => {
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'app.yaml'), NAMESPACE_AND_POD);
    writeFileSync(policyFile, policy('evil'));
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify(TOKENS));
    cp = await runControlPlane({
      config: [configDir],
      stateDir: dir,
      nodeTokens: join(dir, 'tokens.json'),
      listen: '127.0.0.1:0',
      debugListen: '127.0.0.1:0',
      debounceMs: 50,
      logger: () => log,
      onReload: (r) => {
        reloads.push(r);
        for (const w of reloadWaiters.splice(0)) w(r);
      },
    });
    client = new AdsStream(cp.server.port, cp.server.rootPem, 'token-node-1');
  });
  after(async () => {
    client?.close();
    await cp?.close();
    cleanup();
  });

  it('serves the loaded workload and policy', async () => {
    client.subscribe(TYPE_ADDRESS);
    const addresses = await client.next();
    assert.deepEqual(addresses.resources.map((r) => r.name), ['Kubernetes//Pod/shop/web']);
    client.send({ typeUrl: TYPE_ADDRESS, responseNonce: addresses.nonce });
    client.subscribe(TYPE_AUTHORIZATION);
    const policies = await client.next();
    assert.deepEqual(policies.resources.map((r) => r.name), ['shop/deny-evil']);
    assert.equal(policies.resources[0]!.value.rules[0].clauses[0].matches[0].namespaces[0].exact, 'evil');
    client.send({ typeUrl: TYPE_AUTHORIZATION, responseNonce: policies.nonce });
  });

  it('pushes an edit of a watched file', async () => {
    save(policyFile, policy('bad'));
    const r = await client.next();
    assert.equal(r.typeUrl, TYPE_AUTHORIZATION);
    assert.equal(r.resources[0]!.value.rules[0].clauses[0].matches[0].namespaces[0].exact, 'bad');
    client.send({ typeUrl: TYPE_AUTHORIZATION, responseNonce: r.nonce });
    assert.ok(log.has('XDS: Pushing WADS'));
  });

  it('keeps the last good object when an edit is invalid, and reports file:line:col', async () => {
    reloads = [];
    const reloaded = nextReload();
    save(policyFile, policy('worse', 'BOGUS'));
    const report = await reloaded;
    assert.ok(report.errors > 0);
    assert.deepEqual(report.kept, ['AuthorizationPolicy shop/deny-evil']);
    assert.ok(log.lines.some((l) => l.startsWith('error ') && l.includes(`${policyFile}:7:`)), log.lines.join('\n'));
    assert.ok(await client.quiet(300), 'an invalid edit must not push anything');
    const kept = cp.index.allAuthorizations().find((a) => a.name === 'deny-evil');
    assert.equal(kept?.rules[0]?.clauses[0]?.matches[0]?.namespaces[0]?.exact, 'bad');
  });

  it('keeps it through a YAML syntax error too, and applies the fix', async () => {
    const broken = nextReload();
    save(policyFile, policy('worse').replace('namespaces: ["worse"]', 'namespaces: ["worse"'));
    assert.deepEqual((await broken).kept, ['AuthorizationPolicy shop/deny-evil']);
    assert.ok(await client.quiet(300));
    save(policyFile, policy('fixed'));
    const r = await client.next();
    assert.equal(r.resources[0]!.value.rules[0].clauses[0].matches[0].namespaces[0].exact, 'fixed');
    client.send({ typeUrl: TYPE_AUTHORIZATION, responseNonce: r.nonce });
  });

  it('removes the objects of a deleted file', async () => {
    rmSync(policyFile);
    const r = await client.next();
    assert.deepEqual(r.removedResources, ['shop/deny-evil']);
    client.send({ typeUrl: TYPE_AUTHORIZATION, responseNonce: r.nonce });
  });

  it("issues certificates only for the model's pods on the caller's node", async () => {
    const web = 'spiffe://cluster.local/ns/shop/sa/web';
    const req = async () => ({ csr: await createCsr({ keys: await generateKeyPair(), uriSans: [web] }), metadata: { fields: { ImpersonatedIdentity: { stringValue: web } } } });
    const ok = await createCertificate(cp.server.port, cp.server.rootPem, 'token-node-1', await req());
    assert.equal(ok.error, undefined, ok.error?.details);
    assert.equal(ok.certChain!.at(-1), readFileSync(join(dir, 'ca', 'root-cert.pem'), 'utf8'));
    const denied = await createCertificate(cp.server.port, cp.server.rootPem, 'token-node-2', await req());
    assert.equal(denied.error?.code, grpc.status.PERMISSION_DENIED);
  });

  it('reports policy status conditions on /debug/status', async () => {
    save(policyFile, policy('evil', 'AUDIT'));
    await nextReload();
    const status = (await (await fetch(`http://127.0.0.1:${cp.server.debugPort}/debug/status`)).json()) as any;
    const p = status.statuses.find((x: any) => x.kind === 'AuthorizationPolicy' && x.name === 'deny-evil');
    assert.equal(p.conditions[0].type, 'ZtunnelAccepted');
    assert.equal(p.conditions[0].status, 'False');
    assert.match(p.conditions[0].message, /AUDIT/);
  });
});
