// GrpcMessageCounter (src/waypoint/http/grpc.ts): counts gRPC length-prefixed messages (1-byte flag, 4-byte big-endian
// length, body) as the bytes of one direction go by, whatever the chunking; a message counts when its prefix begins,
// as Envoy's grpc_stats FrameInspector counts frames. Plus the small gRPC helpers the waypoint's local replies use.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GrpcMessageCounter, grpcMessage, grpcStatusOf, isGrpcContentType } from '../../src/waypoint/http/grpc.js';

/** One length-prefixed message with a body of `length` bytes (byte i is i & 0xff; `flag` is the compressed flag). */
function frame(length: number, flag = 0): Buffer {
  const b = Buffer.alloc(5 + length);
  b[0] = flag;
  b.writeUInt32BE(length, 1);
  for (let i = 0; i < length; i++) b[5 + i] = i & 0xff;
  return b;
}

function count(...chunks: Buffer[]): number {
  const c = new GrpcMessageCounter();
  for (const chunk of chunks) c.feed(chunk);
  return c.messages;
}

describe('GrpcMessageCounter', () => {
  it('counts one message fed whole, and nothing for no bytes', () => {
    assert.equal(count(frame(10)), 1);
    assert.equal(count(), 0);
    assert.equal(count(Buffer.alloc(0)), 0);
    assert.equal(count(Buffer.alloc(0), frame(3), Buffer.alloc(0)), 1, 'empty chunks change nothing');
  });

  it('counts a stream split into two chunks at every byte offset', () => {
    // Message lengths chosen so prefixes and bodies land on every kind of boundary: empty bodies, a one-byte body, a
    // body whose length needs the third length byte (300 = 0x012c), and one that needs the second (70000 = 0x011170).
    const stream = Buffer.concat([frame(0), frame(1), frame(300, 1), frame(0), frame(7), frame(70_000), frame(0)]);
    const expected = 7;
    const wrong: string[] = [];
    for (let cut = 0; cut <= stream.length; cut++) {
      const n = count(stream.subarray(0, cut), stream.subarray(cut));
      if (n !== expected) wrong.push(`cut at ${cut}: ${n}`);
      if (wrong.length > 10) break;
    }
    assert.deepEqual(wrong, [], `every split counts ${expected} messages`);
  });

  it('counts a stream split into three chunks at every pair of offsets around the prefixes', () => {
    const stream = Buffer.concat([frame(2), frame(0), frame(5), frame(0)]);
    const wrong: string[] = [];
    for (let a = 0; a <= stream.length; a++) {
      for (let b = a; b <= stream.length; b++) {
        const n = count(stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b));
        if (n !== 4) wrong.push(`cuts ${a},${b}: ${n}`);
      }
    }
    assert.deepEqual(wrong.slice(0, 10), []);
  });

  it('counts a stream fed one byte at a time', () => {
    const stream = Buffer.concat([frame(0), frame(1), frame(258), frame(0), frame(0), frame(65_536)]);
    const c = new GrpcMessageCounter();
    for (let i = 0; i < stream.length; i++) c.feed(stream.subarray(i, i + 1));
    assert.equal(c.messages, 6);
  });

  it('counts a message as soon as its prefix begins', () => {
    const c = new GrpcMessageCounter();
    c.feed(Buffer.from([0]));
    assert.equal(c.messages, 1, 'the flag byte alone starts a message');
    c.feed(Buffer.from([0, 0, 0]));
    assert.equal(c.messages, 1, 'the rest of the prefix does not count again');
    c.feed(Buffer.from([4, 1, 2]));
    assert.equal(c.messages, 1, 'body bytes (2 of 4) do not count');
    c.feed(Buffer.from([3, 4]));
    assert.equal(c.messages, 1, 'the body completes');
    c.feed(Buffer.from([1]));
    assert.equal(c.messages, 2, 'the next prefix begins a second message');
  });

  it('counts runs of zero-length messages, however they are chunked', () => {
    const stream = Buffer.concat(Array.from({ length: 50 }, () => frame(0)));
    assert.equal(count(stream), 50);
    for (const size of [1, 2, 3, 4, 5, 6, 7, 9, 11, 249, 250, 251]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.subarray(i, i + size));
      assert.equal(count(...chunks), 50, `chunks of ${size} bytes`);
    }
  });

  it('counts many messages in one chunk', () => {
    const lengths = Array.from({ length: 2000 }, (_, i) => (i * 7919) % 97);
    const stream = Buffer.concat(lengths.map((l, i) => frame(l, i % 2)));
    assert.equal(count(stream), 2000);
    // The same stream in chunks of awkward sizes that keep the chunk boundaries moving through prefixes and bodies.
    for (const size of [13, 4096, 65_537]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.subarray(i, i + size));
      assert.equal(count(...chunks), 2000, `chunks of ${size} bytes`);
    }
  });

  it('reads all four length bytes (a body of 0x01000000 bytes is skipped, not miscounted)', () => {
    const c = new GrpcMessageCounter();
    const prefix = Buffer.from([0, 1, 0, 0, 0]); // 16 MiB
    c.feed(prefix);
    const body = Buffer.alloc(1 << 20, 0); // zeros would look like empty messages if they were read as prefixes
    for (let i = 0; i < 16; i++) c.feed(body);
    assert.equal(c.messages, 1, 'the 16 MiB body holds no message');
    c.feed(frame(0));
    assert.equal(c.messages, 2);
  });

  it('handles a length with the top bit set (0xffffffff) without counting its body', () => {
    const c = new GrpcMessageCounter();
    c.feed(Buffer.from([0, 0xff, 0xff, 0xff, 0xff]));
    c.feed(Buffer.alloc(1 << 20, 0));
    assert.equal(c.messages, 1);
  });

  it('counts independently per instance (one per direction of a stream)', () => {
    const a = new GrpcMessageCounter();
    const b = new GrpcMessageCounter();
    const s = Buffer.concat([frame(1), frame(2)]);
    a.feed(s.subarray(0, 3));
    b.feed(s);
    a.feed(s.subarray(3));
    assert.equal(a.messages, 2);
    assert.equal(b.messages, 2);
  });
});

describe('gRPC local-reply helpers', () => {
  it('maps HTTP statuses to gRPC statuses as Envoy does', () => {
    assert.equal(grpcStatusOf(400), '13');
    assert.equal(grpcStatusOf(401), '16');
    assert.equal(grpcStatusOf(403), '7');
    assert.equal(grpcStatusOf(404), '12');
    assert.equal(grpcStatusOf(429), '14');
    assert.equal(grpcStatusOf(502), '14');
    assert.equal(grpcStatusOf(503), '14');
    assert.equal(grpcStatusOf(504), '14');
    assert.equal(grpcStatusOf(500), '2');
    assert.equal(grpcStatusOf(413), '2');
  });

  it('percent-encodes grpc-message', () => {
    assert.equal(grpcMessage('RBAC: access denied'), 'RBAC: access denied');
    assert.equal(grpcMessage('100% done'), '100%25 done');
    assert.equal(grpcMessage('line\nbreak'), 'line%0Abreak');
    assert.equal(grpcMessage('café'), 'caf%C3%A9');
  });

  it('recognises application/grpc content types only (Envoy: exactly application/grpc or application/grpc+…)', () => {
    assert.equal(isGrpcContentType('application/grpc'), true);
    assert.equal(isGrpcContentType('application/grpc+proto'), true);
    assert.equal(isGrpcContentType('application/grpc+json'), true);
    assert.equal(isGrpcContentType('application/json'), false);
    // envoy source/common/grpc/common.cc Common::hasGrpcContentType: "Content type is gRPC if it is exactly
    // "application/grpc" or starts with "application/grpc+". Specifically, something like application/grpc-web is not
    // gRPC." (the waypoint has no grpc_web filter, so such requests get plain HTTP local replies and retries).
    assert.equal(isGrpcContentType('application/grpc-web'), false, 'application/grpc-web is not gRPC');
    assert.equal(isGrpcContentType('application/grpc-web+proto'), false, 'application/grpc-web+proto is not gRPC');
    assert.equal(isGrpcContentType('application/grpcx'), false);
    assert.equal(isGrpcContentType(undefined), false);
    assert.equal(isGrpcContentType(['application/grpc']), false);
  });
});
