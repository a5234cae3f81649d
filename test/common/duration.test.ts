// humanDuration against k8s.io/apimachinery's HumanDuration at every threshold: the AGE column kubectl users compare.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { age, humanDuration } from '../../src/common/duration.js';

const s = 1000;
const m = 60 * s;
const h = 60 * m;
const d = 24 * h;

describe('humanDuration', () => {
  const cases: [number, string][] = [
    [-2 * s, '<invalid>'],
    [-1999, '0s'], // truncated to -1s: clock skew under two seconds reads as now
    [-1 * s, '0s'],
    [0, '0s'],
    [999, '0s'],
    [45 * s, '45s'],
    [2 * m - 1, '119s'],
    [2 * m, '2m'],
    [3 * m + 20 * s, '3m20s'],
    [9 * m + 59 * s, '9m59s'],
    [10 * m + 30 * s, '10m'],
    [179 * m, '179m'],
    [3 * h, '3h'],
    [5 * h + 10 * m, '5h10m'],
    [7 * h + 59 * m + 59 * s, '7h59m'],
    [8 * h + 30 * m, '8h'],
    [47 * h + 59 * m, '47h'],
    [2 * d, '2d'],
    [3 * d + 4 * h, '3d4h'],
    [7 * d + 23 * h, '7d23h'],
    [8 * d + 5 * h, '8d'],
    [729 * d, '729d'],
    [730 * d, '2y'],
    [740 * d, '2y10d'],
    [8 * 365 * d - 1, '7y364d'],
    [8 * 365 * d, '8y'],
    [20 * 365 * d + 100 * d, '20y'],
  ];
  for (const [ms, want] of cases) {
    it(`${ms} ms → ${want}`, () => assert.equal(humanDuration(ms), want));
  }
});

describe('age', () => {
  const now = Date.parse('2025-06-01T12:00:00Z');
  it('is the human duration since an RFC 3339 timestamp, whatever its offset', () => {
    assert.equal(age('2025-06-01T11:55:00Z', now), '5m');
    assert.equal(age('2025-06-01T13:54:30+02:00', now), '5m30s');
    assert.equal(age('2025-05-29T08:00:00Z', now), '3d4h');
  });
  it('is <unknown> without a timestamp, <invalid> for one in the future', () => {
    assert.equal(age(undefined, now), '<unknown>');
    assert.equal(age('', now), '<unknown>');
    assert.equal(age('2025-06-01T12:00:05Z', now), '<invalid>');
  });
});
