// What `ambit apply/up/delete -f` read and print before talking to the cluster: kubectl's --validate values, unknown
// fields refused (strict), printed as kubectl prints the API server's warnings (warn) or dropped (ignore), and objects
// of kinds the local cluster does not store reported rather than skipped in silence.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadManifests, parseValidate } from '../../src/local/manifests.js';

const dir = mkdtempSync(join(tmpdir(), 'ambit-apply-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** Runs `fn` with stderr captured. */
async function stderrOf<T>(fn: () => T | Promise<T>): Promise<{ value: T; stderr: string }> {
  const write = process.stderr.write;
  let stderr = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: await fn(), stderr };
  } finally {
    process.stderr.write = write;
  }
}

const TYPO = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-web, namespace: shop}
spec:
  selectr:
    matchLabels: {app: web}
  action: DENY
  rules: [{}]
`;

describe('ambit apply -f: --validate', () => {
  it("takes kubectl's values, --validate alone meaning strict, and refuses others with kubectl's message", () => {
    assert.equal(parseValidate(true), 'strict');
    assert.equal(parseValidate('true'), 'strict');
    assert.equal(parseValidate('strict'), 'strict');
    assert.equal(parseValidate('warn'), 'warn');
    assert.equal(parseValidate('false'), 'ignore');
    assert.equal(parseValidate('ignore'), 'ignore');
    assert.throws(() => parseValidate('Strict'), { message: 'invalid - validate option "Strict"; must be one of: strict (or true), warn, ignore (or false)' });
    assert.throws(() => parseValidate('toString'), /invalid - validate option "toString"/);
  });

  it('strict (the default): a misspelt selector is an error at file:line:col and the policy is not applied', async () => {
    const f = file('typo.yaml', TYPO);
    const { value, stderr } = await stderrOf(() => loadManifests([f]));
    assert.equal(stderr, `${f}:5:3: error: AuthorizationPolicy shop/deny-web: unknown field "spec.selectr"\n`);
    assert.deepEqual(value.objects, []);
    assert.equal(value.failed, true);
  });

  it("warn: kubectl's Warning line, and the object is applied; ignore: nothing said", async () => {
    const f = file('typo.yaml', TYPO);
    const warned = await stderrOf(() => loadManifests([f], 'warn'));
    assert.equal(warned.stderr, 'Warning: unknown field "spec.selectr"\n');
    assert.deepEqual(warned.value.objects.map((o) => o.metadata.name), ['deny-web']);
    assert.equal(warned.value.failed, false);
    const ignored = await stderrOf(() => loadManifests([f], 'ignore'));
    assert.equal(ignored.stderr, '');
    assert.deepEqual(ignored.value.objects.map((o) => o.metadata.name), ['deny-web']);
  });

  it("an unknown kind is kubectl's mapping error; the registry's other kinds load as written, after the mesh's", async () => {
    const f = file('mixed.yaml', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: "1"}\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n');
    const loaded = await stderrOf(() => loadManifests([f]));
    assert.equal(loaded.stderr, `${f}:6:1: error: resource mapping not found for name: "w" namespace: "" from "${f}": no matches for kind "Widget" in version "example.com/v1"\nensure CRDs are installed first\n`);
    assert.deepEqual(loaded.value.objects.map((o) => `${o.kind}/${o.metadata.name}`), ['Namespace/shop', 'ConfigMap/settings']);
    assert.deepEqual(loaded.value.locations, [`${f}:10:1`, `${f}:1:1`]);
  });
});
