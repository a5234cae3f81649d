// Command line of ambit-client (launcher: bin/ambit-client). Exit codes: 0 all requests succeeded (or
// --allow-errors), 1 some failed, 2 the command line was wrong.
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { formatSummary, runLoad, UsageError } from './load.js';

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

function wholeNumber(flag: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`invalid ${flag} "${value}": want a whole number`);
    return Number(value);
  };
}

function rate(value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`invalid --qps "${value}": want a number > 0`);
  return n;
}

function header(value: string, previous: [string, string][] | undefined): [string, string][] {
  const colon = value.indexOf(':');
  if (colon <= 0) throw new InvalidArgumentError(`invalid header "${value}": want 'Name: value'`);
  return [...(previous ?? []), [value.slice(0, colon).trim(), value.slice(colon + 1).trim()]];
}

const program = new Command()
  .name('ambit-client')
  .description('Load and probe client for mesh demos and benchmarks: HTTP, TCP echo or gRPC echo requests')
  .argument('<target>', 'http://HOST[:PORT]/PATH, tcp://HOST:PORT (TCP echo) or grpc://HOST:PORT (gRPC echo)')
  .option('-n, --requests <n>', 'number of requests (TCP: round trips)', wholeNumber('-n'), 1)
  .option('-c, --concurrency <n>', 'requests in flight (TCP: connections)', wholeNumber('-c'), 1)
  .option('--qps <q>', 'total request rate; latency then counts from each request\'s scheduled time', rate)
  .option('--payload <bytes>', 'HTTP body size (default 0), TCP round-trip size (default 64), gRPC message size',
    wholeNumber('--payload'))
  .option('--timeout <ms>', 'per-request timeout', wholeNumber('--timeout'), 5000)
  .option('-H, --header <header>', "request header or gRPC metadata 'Name: value' (repeatable)", header)
  .option('-X, --method <method>', 'HTTP method (default GET, or POST with --payload)')
  .option('--json', 'print the summary as JSON')
  .option('--print-body', 'print the body of the first HTTP response before the summary')
  .option('--allow-errors', 'exit 0 even if requests failed')
  .showHelpAfterError()
  .exitOverride();

try {
  program.parse();
} catch (err) {
  const code = (err as CommanderError).code;
  // --help and --version exit cleanly; anything else is a usage error.
  process.exit(code === 'commander.helpDisplayed' || code === 'commander.version' ? 0 : EXIT_USAGE);
}

const opts = program.opts<{
  requests: number;
  concurrency: number;
  qps?: number;
  payload?: number;
  timeout: number;
  header?: [string, string][];
  method?: string;
  json?: boolean;
  printBody?: boolean;
  allowErrors?: boolean;
}>();
const target = program.args[0]!;

try {
  const summary = await runLoad({
    target,
    requests: opts.requests,
    concurrency: opts.concurrency,
    qps: opts.qps,
    payloadBytes: opts.payload ?? (target.startsWith('tcp:') ? 64 : 0),
    timeoutMs: opts.timeout,
    method: opts.method,
    headers: opts.header,
    captureFirstBody: opts.printBody,
  });
  if (opts.printBody && summary.firstBody !== undefined) process.stdout.write(summary.firstBody);
  const { firstBody: _omitted, ...report } = summary;
  process.stdout.write(opts.json ? JSON.stringify(report) + '\n' : formatSummary(summary));
  process.exit(summary.failed > 0 && !opts.allowErrors ? EXIT_FAILED : 0);
} catch (err) {
  process.stderr.write(`ambit-client: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof UsageError ? EXIT_USAGE : EXIT_FAILED);
}
