// Carries connections from a Unix socket to a TCP port on the loopback of the namespace it runs in. A cluster's
// namespaces have no link to the machine's own network, but a Unix socket is a file, reachable from any network
// namespace: `ambit dashboard prometheus --start` runs this in the fabric namespace and listens on the machine's
// loopback itself, passing each connection through the socket (as `kubectl port-forward` passes it through the API).
//
//   nsenter --net=NETNS -- node dist/src/local/unix-forward.js SOCKET PORT
//
// Prints `listening` once the socket accepts connections. A connection whose target refuses is closed; the forward
// itself runs until it is stopped.
import { rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';

const [socket, port] = process.argv.slice(2);
if (!socket || !port || !/^\d+$/.test(port)) {
  process.stderr.write('usage: unix-forward SOCKET PORT\n');
  process.exit(2);
}
// A socket file left by a forward that was killed would make listen() fail with EADDRINUSE.
rmSync(socket, { force: true });
const server = createServer((client) => {
  const target = connect({ host: '127.0.0.1', port: Number(port) });
  client.pipe(target).pipe(client);
  const close = () => {
    client.destroy();
    target.destroy();
  };
  client.on('error', close);
  target.on('error', close);
  client.on('close', close);
  target.on('close', close);
});
server.on('error', (err) => {
  process.stderr.write(`unix-forward ${socket}: ${err.message}\n`);
  process.exit(1);
});
server.listen(socket, () => process.stdout.write('listening\n'));
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    server.close();
    rmSync(socket, { force: true });
    process.exit(0);
  });
}
