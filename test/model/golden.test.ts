// Golden tests of the ambient translation: each test/fixtures/model/NAME.yaml is applied to a fresh store and the
// ztunnel view (config_dump shape, with policy status) must equal NAME.golden.json. UPDATE_GOLDEN=1 rewrites the
// goldens; every rewritten golden must be reviewed by hand against istiod's behaviour before it is kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { ConfigStore } from '../../src/model/store.js';
import { AmbientIndex } from '../../src/model/ambient.js';
import { renderConfigDump } from '../../src/model/configdump.js';
import { FIXTURES, readFixture } from './helpers.js';

const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith('.yaml'));

test('fixtures exist', () => {
  assert.ok(fixtures.length >= 4, `expected golden fixtures in ${FIXTURES.pathname}`);
});

for (const file of fixtures) {
  test(`golden ${file}`, () => {
    const store = new ConfigStore();
    store.apply(readFixture(file));
    // A fixed clock: conditions carry lastTransitionTime.
    const dump = renderConfigDump(new AmbientIndex(store, {}, () => new Date('2026-01-01T00:00:00Z')));
    const actual = `${JSON.stringify(dump, null, 2)}\n`;
    const goldenUrl = new URL(file.replace(/\.yaml$/, '.golden.json'), FIXTURES);
    if (process.env.UPDATE_GOLDEN === '1') {
      writeFileSync(goldenUrl, actual);
      return;
    }
    const expected = readFileSync(goldenUrl, 'utf8');
    assert.deepEqual(JSON.parse(actual), JSON.parse(expected));
  });
}
