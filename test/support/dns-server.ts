// A stand-in DNS server for tests: answers each question that arrives over UDP, or over TCP (length-prefixed, one
// question per connection, as stub resolvers ask), with what `answer` builds for it.
import type * as dgram from 'node:dgram';
import type * as net from 'node:net';

export type DnsTransport = 'udp' | 'tcp';

export function serveDns(udp: dgram.Socket, tcp: net.Server, answer: (query: Buffer, transport: DnsTransport) => Buffer): void {
  udp.on('message', (msg, rinfo) => udp.send(answer(msg, 'udp'), rinfo.port, rinfo.address));
  tcp.on('connection', (s) => {
    s.on('error', () => undefined);
    s.once('data', (frame: Buffer) => {
      const reply = answer(frame.subarray(2, 2 + frame.readUInt16BE(0)), 'tcp');
      const len = Buffer.alloc(2);
      len.writeUInt16BE(reply.length);
      s.end(Buffer.concat([len, reply]));
    });
  });
}
