// The heap tuning the ztunnel applies at start: V8 reads --heap-growing-percent when it recomputes the old
// generation's limit after a full collection, so setting it at run time must change the factor of the next one.
// Checked in a child Node with V8's own trace of that computation (--trace-gc-verbose, printed on stdout).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

const HEAP_MODULE = new URL('../../src/ztunnel/heap.js', import.meta.url).href;

/** The factors V8 computed old-generation limits with, in a child that applies `percent` and collects twice. */
function tracedFactors(percent: number): string[] {
  const script = `
    const { applyHeapGrowingPercent } = await import(${JSON.stringify(HEAP_MODULE)});
    applyHeapGrowingPercent(${percent});
    globalThis.gc();
    globalThis.gc();
  `;
  const out = execFileSync(process.execPath, ['--expose-gc', '--trace-gc-verbose', '--input-type=module', '-e', script], { encoding: 'utf8' });
  // "[HeapController] Limit: old size: 2860 KB, new limit: 12058 KB (2.5)": the factor after any override.
  const factors = [...out.matchAll(/\[HeapController\] Limit: .*\(([\d.]+)\)$/gm)].map((m) => m[1]!);
  assert.ok(factors.length > 0, `no "[HeapController] Limit: … (factor)" line in V8's --trace-gc-verbose output; has its format changed?\n${out.slice(0, 2000)}`);
  return factors;
}

describe('ztunnel heap tuning', () => {
  // 500 % is a factor (6.0) above V8's own range (1.1–4.0), so only the setting can have produced it.
  it('fixes the old-generation growing factor at run time', () => {
    assert.deepEqual(new Set(tracedFactors(500)), new Set(['6.0']));
  });

  it("leaves V8's own factor with 0", () => {
    const factors = tracedFactors(0);
    assert.ok(!factors.includes('6.0'), `factors: ${factors.join(', ')}`);
  });
});
