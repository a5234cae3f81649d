// The byte pump between a TCP connection and an HBONE stream (or any two duplex streams).
//
// - Backpressure: a side is paused while the other side's write buffer is full and resumed on 'drain'.
// - Half-close: when one side ends (FIN / END_STREAM) the other side's writable end is closed and the reverse
//   direction keeps flowing until it ends too.
// - Reset: an error or reset on one side aborts the other: an HTTP/2 stream gets RST_STREAM and a TCP socket is
//   reset (RST) rather than closed cleanly, so the application sees the failure instead of a short stream.
// - Counting adds the chunk length on the 'data' path: no allocation per chunk beyond what the streams do.
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * How much a side may have queued before its source is paused. Streams' own high-water marks (16 KiB) would pause
 * the source after every 64 KiB socket read, and the source then waits for the queue to drain completely before it
 * reads again: one chunk in flight at a time, which cost single-stream throughput over HTTP/2 (in the L4 benchmark
 * 1 MiB also beat 256 KiB by about a third). A peer that stops reading can make the proxy hold this much per
 * direction of a connection; toward the application, on top of the HTTP/2 stream window it has granted (4 MiB).
 */
export const PUMP_HIGH_WATER_MARK = 1024 * 1024;

/**
 * Chunks at least this big start a write batch (see the pump). Smaller ones, request/response traffic, are written
 * at once: batching them would only add a deferred write per message.
 */
const BATCH_MIN_CHUNK = 8 * 1024;

export interface CopyResult {
  /** Bytes read from `a` and written to `b`. */
  aToB: number;
  /** Bytes read from `b` and written to `a`. */
  bToA: number;
  /** First error or reset seen on either side, if the copy did not finish cleanly. */
  error?: Error;
}

function isHttp2Stream(s: Duplex): s is http2.Http2Stream {
  // node:http2 does not export the Http2Stream class at runtime; rstCode is a getter on its prototype.
  return 'rstCode' in s;
}

// Aborts `s` because its peer side failed: reset instead of a graceful close, so the failure propagates.
function abort(s: Duplex): void {
  if (s.destroyed) return;
  if (isHttp2Stream(s)) {
    // Not close(NGHTTP2_CONNECT_ERROR): Node's close() first ends the writable side, so the peer would see
    // END_STREAM (a clean FIN for its application) before the RST_STREAM. destroy(err) sends only
    // RST_STREAM (INTERNAL_ERROR), so a truncated upload can never look complete.
    s.destroy(new Error('HBONE peer connection reset'));
    return;
  }
  // resetAndDestroy() only on a socket whose writable side is still open: once end() has queued a shutdown,
  // libuv refuses the reset (EINVAL) and Node then leaves the handle open, which spins the event loop when the
  // peer hangs up. After our FIN the peer has seen EOF anyway, so a plain destroy is enough.
  if (s instanceof net.Socket && !s.connecting && !s.writableEnded) {
    s.resetAndDestroy();
    return;
  }
  s.destroy();
}

// A side ended abnormally: an error was emitted, an HTTP/2 stream was reset or closed without END_STREAM.
function abnormalClose(s: Duplex): Error | undefined {
  if (isHttp2Stream(s) && s.rstCode !== undefined && s.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
    return new Error(`stream reset with HTTP/2 error code ${s.rstCode}`);
  }
  if (!s.readableEnded) return new Error('connection closed before end of stream');
  return undefined;
}

/** Told about every chunk as it is copied, so byte counters can move while a connection is open. */
export interface CopyObserver {
  aToB(n: number): void;
  bToA(n: number): void;
}

/** Copies bytes both ways between `a` and `b` until both directions finish; never rejects. */
export function copyBidirectional(a: Duplex, b: Duplex, observer?: CopyObserver): Promise<CopyResult> {
  const result: CopyResult = { aToB: 0, bToA: 0 };
  // TCP half-close needs allowHalfOpen: otherwise Node ends a socket's writable side as soon as its readable
  // side ends, cutting off the reverse direction. Sockets from net.connect() default to false.
  for (const s of [a, b]) if (s instanceof net.Socket) s.allowHalfOpen = true;

  return new Promise((resolve) => {
    let closed = 0;
    const fail = (err: Error) => {
      result.error ??= err;
      abort(a);
      abort(b);
    };
    const pump = (src: Duplex, dst: Duplex, count: (n: number) => void) => {
      let corked = false;
      const uncork = () => {
        corked = false;
        dst.uncork();
      };
      src.on('data', (chunk: Buffer) => {
        count(chunk.length);
        if (dst.destroyed) return;
        // Bulk chunks that arrive in the same event-loop turn leave in one writev. An HTTP/2 stream delivers each
        // DATA frame as it is decrypted, and 16 KiB frames straddle 16 KiB TLS records, so a write per chunk would
        // be two system calls per frame, one of them for a few bytes.
        if (!corked && chunk.length >= BATCH_MIN_CHUNK) {
          corked = true;
          dst.cork();
          setImmediate(uncork);
        }
        // Pause only when write() asked for it too: 'drain' comes only after a write that returned false.
        if (!dst.write(chunk) && dst.writableLength >= PUMP_HIGH_WATER_MARK) src.pause();
      });
      dst.on('drain', () => src.resume());
      src.on('end', () => {
        if (!dst.writableEnded && !dst.destroyed) dst.end();
      });
    };
    if (observer) {
      pump(a, b, (n) => {
        result.aToB += n;
        observer.aToB(n);
      });
      pump(b, a, (n) => {
        result.bToA += n;
        observer.bToA(n);
      });
    } else {
      pump(a, b, (n) => (result.aToB += n));
      pump(b, a, (n) => (result.bToA += n));
    }
    for (const s of [a, b]) {
      s.on('error', fail);
      s.on('close', () => {
        const err = abnormalClose(s);
        if (err) fail(err);
        if (++closed === 2) resolve(result);
      });
    }
  });
}
