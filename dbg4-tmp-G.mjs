import { mesh, upstream, startServer } from './dist/test/hbone/fixtures.js';
import { dialHbone, openTunnel } from './dist/src/hbone/client.js';
import http2 from 'node:http2'; import { randomBytes } from 'node:crypto';
const m = await mesh();
const echo = await upstream();
const srv = await startServer(m.server, { onStreamClose: (s) => console.log('stats', s.error, s.bytesReceived, s.bytesSent) });
const sess = await dialHbone({ destination: { address: '127.0.0.1', port: srv.port }, certificate: m.client, expectedIdentities: ['spiffe://cluster.local/ns/default/sa/server'] });
const big = randomBytes(4 * 1024 * 1024);
const streams = await Promise.all([1, 2, 3].map(() => openTunnel(sess, { target: { address: '127.0.0.1', port: echo.port } })));
for (const s of streams) s.write(big);
streams[0].close(http2.constants.NGHTTP2_CANCEL);
streams[1].close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
await new Promise((r) => setTimeout(r, 20));
sess.destroy();
await new Promise(r => setTimeout(r, 500)); console.log((await import("node:child_process")).execSync("ss -tnp | grep node || true").toString());
for (let i = 0; i < 2; i++) { await new Promise(r => setTimeout(r, 300)); console.log('sessions', srv.server.sessionCount, 'echo sockets open', echo.sockets.filter(s => !s.destroyed).length); }
process.exit(0);
