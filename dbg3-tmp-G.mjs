import { mesh, upstream, startServer } from './dist/test/hbone/fixtures.js';
import tls from 'node:tls'; import net from 'node:net'; import { randomBytes } from 'node:crypto';
const m = await mesh();
const srv = await startServer(m.server);
const garbage = (data, viaTls) => new Promise((resolve) => {
  const done = () => resolve();
  const s = viaTls ? tls.connect({ host: '127.0.0.1', port: srv.port, key: m.client.keyPem, cert: m.client.certChainPem, ca: m.ca.certPem, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined }) : net.connect(srv.port, '127.0.0.1');
  s.on('error', (e) => { console.log('client err', e.message); done(); }); s.on('close', done); s.once(viaTls ? 'secureConnect' : 'connect', () => s.write(data)); s.resume();
});
await garbage(randomBytes(4096), false); console.log('1 sessions', srv.server.sessionCount);
await garbage(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), true); console.log('2 sessions', srv.server.sessionCount);
await garbage(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), randomBytes(2048)]), true); console.log('3 sessions', srv.server.sessionCount);
await new Promise(r => setTimeout(r, 500)); console.log('after sessions', srv.server.sessionCount, srv.errors.map(e => e.message));
process.exit(0);
