// `ambit exec NS/NAME -- CMD [ARG...]`: run a command inside a pod (its network namespace, environment and DNS
// configuration) with stdin/stdout/stderr passed through; exits with the command's exit code.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Command } from 'commander';
import { ClusterClient, parseTarget, withClusterOption } from '../../local/client.js';
import { sandboxArgv, type ContainerSandbox, type PodSandbox } from '../../local/sandbox.js';

export function register(program: Command): void {
  withClusterOption(
    program
      .command('exec')
      .description('Run a command inside a pod (or a ready pod of a Deployment) of the local cluster')
      .argument('<target>', 'NAMESPACE/NAME or NAME (a pod or a Deployment)')
      .argument('<command...>', 'command and arguments (put -- before them)')
      .option('-n, --namespace <ns>', 'namespace when the target has none', 'default')
      .option('-c, --container <name>', 'container whose environment to use (default: the first)'),
  ).action(async (target: string, command: string[], opts: { namespace: string; container?: string; cluster?: string }) => {
    const client = ClusterClient.fromOptions(opts);
    const t = parseTarget(target, opts.namespace);
    const spec = await client.call<{ sandbox: PodSandbox; containerSandbox: ContainerSandbox; env: Record<string, string>; cwd: string; enter: string[] }>('POST', '/v1/exec', {
      ...t,
      container: opts.container,
    });
    const argv = [...spec.enter, ...sandboxArgv(spec.sandbox, spec.containerSandbox, command)];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', env: { ...spec.env, ...(process.env.TERM ? { TERM: process.env.TERM } : {}) }, cwd: spec.cwd });
    // The command owns the terminal: ^C goes to it (same foreground process group), not to us.
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    process.on('SIGQUIT', ignore);
    // Being told to stop (kill, a closed terminal) stops the command too: it must not outlive us unseen. The sandbox's
    // unshare ignores SIGTERM while it waits; killing it takes the command's PID namespace down with it.
    for (const signal of ['SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill('SIGKILL'));
    const code = await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c, signal) => resolve(c ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)));
    });
    process.exitCode = code;
  });
}
