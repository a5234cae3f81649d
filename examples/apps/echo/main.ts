// Command line of ambit-echo (launcher: bin/ambit-echo). Flags win over env vars, env vars over defaults, so a
// Deployment can set ports either way and the identity always comes from the downward-API env vars.
import { Command, InvalidArgumentError, Option } from 'commander';
import { identityFromEnv, startEcho } from './server.js';

function port(flag: string) {
  return (value: string): number => {
    if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
      throw new InvalidArgumentError(`invalid ${flag} "${value}": want a port number from 0 to 65535`);
    }
    return Number(value);
  };
}

function count(value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new InvalidArgumentError(`invalid count "${value}": want a whole number`);
  return Number(value);
}

function httpStatus(value: string): number {
  if (!/^\d{3}$/.test(value) || Number(value) < 200 || Number(value) > 599) {
    throw new InvalidArgumentError(`invalid status "${value}": want a number from 200 to 599`);
  }
  return Number(value);
}

function milliseconds(value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new InvalidArgumentError(`invalid duration "${value}": want milliseconds`);
  return Number(value);
}

const program = new Command()
  .name('ambit-echo')
  .description('Echo server for mesh demos and benchmarks: HTTP, raw TCP and optional gRPC')
  .addOption(new Option('--host <address>', 'listen address for all ports').env('ECHO_HOST').default('0.0.0.0'))
  .addOption(new Option('--http-port <port>', 'HTTP port (0 = any free port)').env('HTTP_PORT')
    .argParser(port('--http-port')).default(8080))
  .addOption(new Option('--tcp-port <port>', 'raw TCP echo port (0 = any free port)').env('TCP_PORT')
    .argParser(port('--tcp-port')).default(9090))
  .addOption(new Option('--grpc-port <port>', 'gRPC echo port; off unless given').env('GRPC_PORT')
    .argParser(port('--grpc-port')))
  .addOption(new Option('--service-version <v>', 'reported as ServiceVersion=').env('SERVICE_VERSION'))
  .addOption(new Option('--fail-every <n>', 'answer every n-th HTTP request (1: all; /healthz excepted) with --fail-status')
    .env('FAIL_EVERY').argParser(count).default(0))
  .addOption(new Option('--fail-status <code>', 'status of the failed requests').env('FAIL_STATUS')
    .argParser(httpStatus).default(503))
  .option('--no-access-log', 'do not log one line per request (for benchmarks)')
  .addOption(new Option('--shutdown-grace <ms>', 'how long SIGTERM waits for in-flight requests')
    .argParser(milliseconds).default(10_000))
  .showHelpAfterError()
  .parse();

const opts = program.opts<{
  host: string;
  httpPort: number;
  tcpPort: number;
  grpcPort?: number;
  serviceVersion?: string;
  failEvery: number;
  failStatus: number;
  accessLog: boolean;
  shutdownGrace: number;
}>();

const identity = identityFromEnv(process.env);
if (opts.serviceVersion !== undefined) identity.serviceVersion = opts.serviceVersion;

try {
  const server = await startEcho({
    host: opts.host,
    httpPort: opts.httpPort,
    tcpPort: opts.tcpPort,
    grpcPort: opts.grpcPort,
    identity,
    accessLog: opts.accessLog ? process.stdout : undefined,
    failEvery: opts.failEvery,
    failStatus: opts.failStatus,
  });
  const grpc = server.grpcPort === undefined ? 'off' : `${opts.host}:${server.grpcPort}`;
  // Tests and scripts started with port 0 read the bound ports from this line.
  process.stdout.write(`ambit-echo pod=${identity.pod} namespace=${identity.namespace} node=${identity.node} ` +
    `serviceAccount=${identity.serviceAccount} listening http=${opts.host}:${server.httpPort} ` +
    `tcp=${opts.host}:${server.tcpPort} grpc=${grpc}\n`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stdout.write(`ambit-echo: second ${signal}, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    process.stdout.write(`ambit-echo: ${signal} received, draining (up to ${opts.shutdownGrace}ms)\n`);
    server.shutdown(opts.shutdownGrace).then(() => {
      process.stdout.write('ambit-echo: stopped\n');
      process.exit(0);
    }, (err: unknown) => {
      process.stderr.write(`ambit-echo: shutdown failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} catch (err) {
  process.stderr.write(`ambit-echo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
