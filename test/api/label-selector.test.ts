// Label selectors as kubectl users write them: parsing, matching and the API server's messages for bad ones.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseSelector, type Requirement } from '../../src/api/label-selector.js';
import { LABEL_VALUE_RULE, QUALIFIED_NAME_RULE } from '../support/kube-messages.js';


describe('parseSelector: requirements', () => {
  const cases: [string, Requirement[]][] = [
    ['', []],
    ['app=web', [{ key: 'app', operator: '=', values: ['web'] }]],
    ['app==web', [{ key: 'app', operator: '==', values: ['web'] }]],
    ['app!=web', [{ key: 'app', operator: '!=', values: ['web'] }]],
    ['app', [{ key: 'app', operator: 'exists', values: [] }]],
    ['!app', [{ key: 'app', operator: '!', values: [] }]],
    ['tier in (front, back)', [{ key: 'tier', operator: 'in', values: ['back', 'front'] }]],
    ['tier notin (cache,cache)', [{ key: 'tier', operator: 'notin', values: ['cache'] }]],
    // apimachinery's own example: empty members are the empty value, `()` too.
    [
      'x in (foo,,baz),y,z notin ()',
      [
        { key: 'x', operator: 'in', values: ['', 'baz', 'foo'] },
        { key: 'y', operator: 'exists', values: [] },
        { key: 'z', operator: 'notin', values: [''] },
      ],
    ],
    ['x in (a,)', [{ key: 'x', operator: 'in', values: ['', 'a'] }]],
    [' app = web , !canary ', [{ key: 'app', operator: '=', values: ['web'] }, { key: 'canary', operator: '!', values: [] }]],
    ['istio.io/rev=1-24', [{ key: 'istio.io/rev', operator: '=', values: ['1-24'] }]],
    ['in=notin', [{ key: 'in', operator: '=', values: ['notin'] }]],
    ['x in (in)', [{ key: 'x', operator: 'in', values: ['in'] }]],
    ['a=', [{ key: 'a', operator: '=', values: [''] }]],
    ['a=,b', [{ key: 'a', operator: '=', values: [''] }, { key: 'b', operator: 'exists', values: [] }]],
    ['replicas>2,replicas<10', [{ key: 'replicas', operator: 'gt', values: ['2'] }, { key: 'replicas', operator: 'lt', values: ['10'] }]],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => assert.deepEqual(parseSelector(text).requirements, want));
  }
});

describe('parseSelector: matching', () => {
  const cases: [string, Record<string, string> | undefined, boolean][] = [
    ['', undefined, true],
    ['app=web', { app: 'web' }, true],
    ['app=web', { app: 'db' }, false],
    ['app=web', {}, false],
    ['app==web', { app: 'web', tier: 'x' }, true],
    ['app!=web', {}, true],
    ['app!=web', { app: 'web' }, false],
    ['app!=web', { app: 'db' }, true],
    ['tier in (front,back)', { tier: 'back' }, true],
    ['tier in (front,back)', { tier: 'cache' }, false],
    ['tier in (front,back)', {}, false],
    ['tier notin (front,back)', {}, true],
    ['tier notin (front,back)', { tier: 'front' }, false],
    ['app', { app: '' }, true],
    ['app', undefined, false],
    ['!app', {}, true],
    ['!app', { app: 'web' }, false],
    ['a=', { a: '' }, true],
    ['a=', {}, false],
    ['x in (a,)', { x: '' }, true],
    ['replicas>2', { replicas: '3' }, true],
    ['replicas>2', { replicas: '2' }, false],
    ['replicas>2', { replicas: 'three' }, false],
    ['replicas>2', {}, false],
    ['app=web,!canary,tier in (front)', { app: 'web', tier: 'front' }, true],
    ['app=web,!canary,tier in (front)', { app: 'web', tier: 'front', canary: 'true' }, false],
    // Inherited properties are not labels.
    ['constructor', {}, false],
  ];
  for (const [text, labels, want] of cases) {
    it(`${JSON.stringify(text)} on ${JSON.stringify(labels)} → ${want}`, () => assert.equal(parseSelector(text).matches(labels), want));
  }
});

describe('parseSelector: errors read as the API server writes them', () => {
  const cases: [string, string][] = [
    ['app:web', `unable to parse requirement: <nil>: Invalid value: "app:web": name part ${QUALIFIED_NAME_RULE}`],
    [
      'a/b/c=d',
      `unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name ${QUALIFIED_NAME_RULE} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ],
    [
      'app.kubernetes_io/name=x',
      'unable to parse requirement: <nil>: Invalid value: "app.kubernetes_io/name": prefix part a lowercase RFC 1123 subdomain must consist of lower case ' +
        "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is " +
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    ],
    ['example.com/', `unable to parse requirement: <nil>: Invalid value: "example.com/": name part must be non-empty; name part ${QUALIFIED_NAME_RULE}`],
    [`${'k'.repeat(64)}`, `unable to parse requirement: <nil>: Invalid value: "${'k'.repeat(64)}": name part must be no more than 63 characters`],
    ['a b', "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"],
    ['a in', "unable to parse requirement: found '' expected: '('"],
    ['a in (b', "unable to parse requirement: found '', expected: ',' or ')'"],
    ['a in (b c)', "unable to parse requirement: found 'c', expected: ',' or ')'"],
    ['a in (=)', "unable to parse requirement: found '=', expected: ',', ')' or identifier"],
    ['a in (b,=)', "unable to parse requirement: found '=', expected: ',', or identifier"],
    ['a=!', "unable to parse requirement: found '!', expected: identifier"],
    ['! =a', "unable to parse requirement: found '=', expected: identifier"],
    // The longest symbol wins: `!=` is one token, not `!` and `=`.
    ['!=a', "found '!=', expected: !, identifier, or 'end of string'"],
    ['a=b,', "found '', expected: identifier after ','"],
    ['a=b c', "found 'c', expected: ',' or 'end of string'"],
    ['a=b=c', "found '=', expected: ',' or 'end of string'"],
    ['!a=b', "found '=', expected: ',' or 'end of string'"],
    [',a', "found ',', expected: !, identifier, or 'end of string'"],
    ['a>x', `unable to parse requirement: values[0]: Invalid value: "x": for 'Gt', 'Lt' operators, the value must be an integer`],
    ['a>99999999999999999999', `unable to parse requirement: values[0]: Invalid value: "99999999999999999999": for 'Gt', 'Lt' operators, the value must be an integer`],
    ['a=-b', `unable to parse requirement: values[0][a]: Invalid value: "-b": ${LABEL_VALUE_RULE}`],
    ['a>-1', `unable to parse requirement: values[0][a]: Invalid value: "-1": ${LABEL_VALUE_RULE}`],
    [`a=${'v'.repeat(64)}`, `unable to parse requirement: values[0][a]: Invalid value: "${'v'.repeat(64)}": must be no more than 63 characters`],
    // Several problems: apimachinery's aggregate, in brackets.
    [
      'a in (-y,-x)',
      `unable to parse requirement: [values[0][a]: Invalid value: "-x": ${LABEL_VALUE_RULE}, values[1][a]: Invalid value: "-y": ${LABEL_VALUE_RULE}]`,
    ],
  ];
  for (const [text, message] of cases) {
    it(JSON.stringify(text), () => assert.throws(() => parseSelector(text), { message }));
  }
});
