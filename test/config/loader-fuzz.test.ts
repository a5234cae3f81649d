// Fuzz of the configuration loader: valid manifests mutated at random (and a few hostile shapes) never make it throw
// or hang; whatever it accepts is an object that validates, and whatever it rejects is reported with a location.
// The normal suite runs a few seconds of it; `npm run fuzz` runs it longer (AMBIT_FUZZ_ITERATIONS).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatIssue, parseText } from '../../src/config/loader.js';
import { validateResource } from '../../src/api/validation.js';
import { FuzzRandom, fuzzIterations, fuzzSeed } from '../support/fuzz.js';

const DEMO = readFileSync(fileURLToPath(new URL('../../../test/fixtures/config/ambient-demo.yaml', import.meta.url)), 'utf8');
/** Each document of the demo on its own (small inputs make many iterations cheap), and the whole file. */
const SEEDS = [...DEMO.split(/^---$/m).filter((d) => d.includes('kind:')), DEMO];
/** YAML's special syntax, and values that stress the validators. */
const TOKENS = [
  '---\n', '...\n', ': ', '- ', '{', '}', '[', ']', ',', '&a ', '*a', '<<: *a\n', '!!binary ', '!!str ', '!custom ', '? ', '|\n', '>-\n',
  '"', "'", '#', '\t', '%YAML 1.2\n', '~', 'null', '.nan', '0x7fffffffffffffff', '1e400', '-1', '__proto__: {}\n', 'constructor: 1\n',
  `"${'a'.repeat(300)}"`, '\u0000', '\ufeff', 'é', '\r\n',
];
const ALPHABET = 'abcAZ019-_./:{}[],&*!|>#"\' \n\t\\';

function check(text: string, where: string): void {
  let r;
  try {
    r = parseText(text, 'fuzz.yaml');
  } catch (e) {
    assert.fail(`${where}: parseText threw ${(e as Error).stack}\ninput: ${JSON.stringify(text)}`);
  }
  for (const issue of r.issues) {
    assert.ok(issue.location.line >= 0 && issue.location.column >= 0, `${where}: issue without a location`);
    assert.equal(typeof formatIssue(issue), 'string');
  }
  for (const o of r.objects) {
    const again = validateResource(o.resource).issues.filter((i) => i.severity === 'error');
    assert.deepEqual(again, [], `${where}: an accepted object does not validate again\ninput: ${JSON.stringify(text)}`);
  }
}

describe('loader fuzz', () => {
  it('mutated manifests never throw; accepted objects validate; problems have locations', () => {
    const rand = new FuzzRandom();
    const n = fuzzIterations(1500);
    for (let i = 0; i < n; i++) check(rand.mutate(rand.pick(SEEDS), TOKENS, ALPHABET), `seed ${fuzzSeed()} iteration ${i}`);
  });

  it('hostile shapes: deep nesting, alias expansion, huge scalars, many documents', () => {
    const shapes = [
      '['.repeat(20_000),
      `a: ${'['.repeat(5000)}${']'.repeat(5000)}\n`,
      `${'- '.repeat(3000)}x\n`,
      'a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n',
      `apiVersion: v1\nkind: Namespace\nmetadata: {name: "${'n'.repeat(1_000_000)}"}\n`,
      '---\n'.repeat(20_000),
      `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  labels:\n${Array.from({ length: 5000 }, (_, i) => `    k${i}: v${i}\n`).join('')}`,
    ];
    shapes.forEach((text, i) => check(text, `shape ${i}`));
  });
});
