// A CONNECT stream dressed as the socket Node's HTTP/1 server and client expect. Two reasons it is needed:
//  - Node writes HTTP/1 heads as strings, and an HTTP/2 stream's native writev can send a string's memory after V8
//    moved or freed it (seen: the first 16 bytes of a request line arriving as garbage). Here every write is a Buffer
//    by the time it reaches the stream (Writable's decodeStrings).
//  - http.Agent and the server call socket methods an Http2Stream lacks (setKeepAlive, ref, unref) and rely on
//    setTimeout's 'timeout' event to retire idle keep-alive connections.
import * as http2 from 'node:http2';
import type { Http2Stream } from 'node:http2';
import { Duplex } from 'node:stream';

export class TunnelSocket extends Duplex {
  /** Shown as the socket's peer (Node's server reads it for req.socket.remoteAddress). */
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private closeAfterEnd = false;

  constructor(
    private readonly inner: Duplex,
    peer?: { address: string; port: number },
  ) {
    super({ allowHalfOpen: true });
    this.remoteAddress = peer?.address;
    this.remotePort = peer?.port;
    inner.on('data', (chunk: Buffer) => {
      this.idleTimer?.refresh();
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (e) => this.destroy(e));
    inner.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.idleTimer?.refresh();
    this.inner.write(chunk, cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (error?: Error | null) => void): void {
    this.idleTimer?.refresh();
    this.inner.cork();
    for (let i = 0; i < chunks.length - 1; i++) this.inner.write(chunks[i]!.chunk);
    this.inner.write(chunks[chunks.length - 1]!.chunk, cb);
    this.inner.uncork();
  }

  override _final(cb: (error?: Error | null) => void): void {
    this.inner.end(cb);
    // An HTTP/2 stream closes with NO_ERROR once its last frame is out (Node waits for the end to flush).
    if (this.closeAfterEnd) (this.inner as Partial<Http2Stream>).close?.(http2.constants.NGHTTP2_NO_ERROR);
  }

  /**
   * Ends the connection after what was written, and closes the CONNECT stream under it rather than wait for the
   * peer's end: HTTP/2's way of saying "the response is complete, stop sending" to a client still uploading.
   */
  endAndClose(): void {
    this.closeAfterEnd = true;
    this.end();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (!this.inner.destroyed) this.inner.destroy(err ?? undefined);
    cb(err);
  }

  /**
   * Emits 'timeout' after `ms` without a byte either way, like net.Socket: 0 turns it off and removes `cb` (Node's
   * HTTP client calls `setTimeout(0, listener)` every time it hands a kept-alive socket back, so adding it would leak).
   */
  setTimeout(ms: number, cb?: () => void): this {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (cb) {
      if (ms === 0) this.removeListener('timeout', cb);
      else this.once('timeout', cb);
    }
    if (ms > 0) {
      this.idleTimer = setTimeout(() => this.emit('timeout'), ms);
      this.idleTimer.unref();
    }
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }
}
