// V8 heap tuning for the proxy process.
//
// Every TLS record Node decrypts for an HTTP/2 session lands in a fresh off-heap buffer (16 KiB), so a bulk HBONE
// transfer churns through external memory at the link rate while the JavaScript heap stays small (about 11 MB live).
// V8 counts that churn toward the old generation's allocation limit, which it sets to a multiple of the live heap.
// With the limit V8 had chosen (about 24 MB of slack), a transfer at 2.5 Gbit/s crossed it every 70–80 ms: about
// 300 full mark-compacts in the 30 s of transfer of a benchmark run, a fifth of the receiving core, although each of
// them found almost nothing to free (the young-generation collections free those buffers).
// A fixed factor of 4 leaves enough slack for the young collections to get there first. 4 is the largest factor V8
// picks by itself when its heap limit is 2 GB or more (Node derives that limit from the memory it sees, a container's
// limit included; below it V8 would stay under 2×). The on-heap cost: the heap may grow to four times its live size
// between full collections.
import v8 from 'node:v8';

/**
 * Fixes V8's old-generation growing factor at 1 + percent/100. 0 changes nothing, so V8's heuristic, or a
 * `--heap-growing-percent` given to node itself, stays in force.
 */
export function applyHeapGrowingPercent(percent: number): void {
  if (percent === 0) return;
  // V8 reads the flag each time it recomputes the limit after a full collection, so setting it at run time takes
  // effect from the next one (test/ztunnel/heap.test.ts checks this against the running Node).
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}
