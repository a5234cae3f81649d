// V8 heap tuning for the proxy process.
//
// Every TLS record Node decrypts for an HTTP/2 session lands in a fresh off-heap buffer (16 KiB), so a bulk HBONE
// transfer churns through external memory at the link rate while the JavaScript heap stays small (about 11 MB live).
// V8 counts that churn toward the old generation's allocation limit, which it sets to a multiple of the live heap.
// Once the memory reducer has shrunk that limit on an idle proxy (about 24 MB of slack), a transfer at 2.5 Gbit/s
// crossed it every 70–80 ms: about 300 full mark-compacts per minute, a fifth of the receiving core, although every
// one of them found almost nothing to free (the young-generation collections had already freed the buffers).
// A fixed factor of 4, the top of the range V8 picks from by itself, leaves enough slack for the young collections to
// get there first. The on-heap cost is bounded by four times the live heap between full collections.
import v8 from 'node:v8';

/** Fixes V8's old-generation growing factor at 1 + percent/100; 0 leaves V8's own heuristic. */
export function applyHeapGrowingPercent(percent: number): void {
  // The flag is read each time V8 recomputes the limit, so setting it at run time takes effect at the next
  // collection (test/ztunnel/heap.test.ts checks this against the running Node).
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}
