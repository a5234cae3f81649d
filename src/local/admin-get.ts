// One GET to a loopback-only admin port from inside a namespace: the supervisor starts it through nsenter, because
// the components' admin ports (ztunnel's 15000, the control plane's 15014) listen on their own namespace's loopback.
// Prints {"status": N, "body": "..."} on stdout; a refused or timed-out connection exits 1 with the reason on stderr.
//
//   nsenter --net=NETNS -- node dist/src/local/admin-get.js PORT PATH
import { request } from 'node:http';

const TIMEOUT_MS = 10_000;

const [port, path] = process.argv.slice(2);
if (!port || !/^\d+$/.test(port) || !path?.startsWith('/')) {
  process.stderr.write('usage: admin-get PORT /PATH\n');
  process.exit(2);
}
const req = request({ host: '127.0.0.1', port: Number(port), path, method: 'GET', timeout: TIMEOUT_MS }, (res) => {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') })));
});
req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000}s`)));
req.on('error', (err) => {
  process.stderr.write(`GET http://127.0.0.1:${port}${path}: ${err.message}\n`);
  process.exit(1);
});
req.end();
