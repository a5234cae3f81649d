// Runs bin/ambit-echo and bin/ambit-client as real processes on loopback for the example-app tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// Compiled to dist/test/examples/; the launchers live in <repo>/bin.
export const ECHO_BIN = fileURLToPath(new URL('../../../bin/ambit-echo', import.meta.url));
export const CLIENT_BIN = fileURLToPath(new URL('../../../bin/ambit-client', import.meta.url));

export const IDENTITY_ENV = {
  POD_NAME: 'echo-7d9f8-abcde',
  POD_NAMESPACE: 'orders',
  NODE_NAME: 'node-a',
  SERVICE_ACCOUNT: 'orders-sa',
};

export interface EchoProcess {
  child: ChildProcess;
  httpPort: number;
  tcpPort: number;
  grpcPort: number | undefined;
  /** Everything written to stdout so far. */
  output(): string;
  /** Resolves with the exit code once the process is gone. */
  exited: Promise<number | null>;
  kill(): void;
}

/** Starts the echo server on 127.0.0.1 with OS-picked ports and waits for its "listening" line. */
export async function startEchoProcess(extraArgs: string[] = [], env: Record<string, string> = {}): Promise<EchoProcess> {
  const child = spawn(ECHO_BIN, ['--host', '127.0.0.1', '--http-port', '0', '--tcp-port', '0', ...extraArgs], {
    env: { ...process.env, ...IDENTITY_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const ready = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => {
      kill();
      reject(new Error(`ambit-echo did not report its ports within 10s; stdout: ${out} stderr: ${err}`));
    }, 10_000);
    const check = (): void => {
      const m = /http=[^ ]+:(\d+) tcp=[^ ]+:(\d+) grpc=(?:off|[^ ]+:(\d+))/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`ambit-echo exited with ${code} before listening; stderr: ${err}`));
    });
  });
  return {
    child,
    httpPort: Number(ready[1]),
    tcpPort: Number(ready[2]),
    grpcPort: ready[3] === undefined ? undefined : Number(ready[3]),
    output: () => out,
    exited,
    kill,
  };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a launcher to completion (killed after timeoutMs) and collects its output. */
export function run(bin: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${bin} ${args.join(' ')} did not finish within ${timeoutMs}ms; stdout: ${stdout}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
