// Running the system tools the local cluster is built from (ip, nft, nsenter, unshare, mount). Node cannot setns()
// its own threads into another namespace, so everything that must happen inside a namespace is a short-lived
// helper process started through nsenter.
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export class CommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`${argv.join(' ')} failed (exit ${code ?? 'signal'}): ${stderr.trim() || 'no error output'}`);
  }
}

/** Runs a program to completion; rejects with the command line and its stderr when it fails. */
export function run(argv: string[], options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      argv[0]!,
      argv.slice(1),
      // A helper past its deadline is killed outright: a pod sandbox's unshare ignores SIGTERM (see sandbox.ts).
      { timeout: options.timeoutMs ?? 30_000, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, env: options.env, cwd: options.cwd },
      (err, stdout, stderr) => {
        if (err) {
          const code = typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null;
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
            reject(new Error(`${argv[0]} is not installed (needed by the local cluster); install it, e.g. apt-get install ${packageOf(argv[0]!)}`));
            return;
          }
          reject(new CommandError(argv, code, String(stderr) || err.message));
          return;
        }
        resolvePromise(String(stdout));
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

/** Whether an executable named `tool` is in one of $PATH's directories. */
export function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export function packageOf(tool: string): string {
  return { ip: 'iproute2', nft: 'nftables', nsenter: 'util-linux', unshare: 'util-linux', setpriv: 'util-linux', mount: 'mount' }[tool] ?? tool;
}

/** argv prefix that runs the rest of a command line inside the network namespace bound at `netnsPath`. */
export function inNetns(netnsPath: string, argv: string[]): string[] {
  return ['nsenter', `--net=${netnsPath}`, '--', ...argv];
}

/**
 * argv prefix that enters a rootless cluster's user and mount namespaces (those of its supervisor, `supervisorPid`):
 * its network namespaces are bound there only. Empty for a cluster run as root.
 */
export function supervisorNamespaces(rootless: boolean, supervisorPid: number): string[] {
  return rootless ? ['nsenter', `--target=${supervisorPid}`, '--user', '--mount', '--preserve-credentials', '--'] : [];
}

/** Runs `ip -batch -` inside a network namespace (one process for many changes). */
export function ipBatch(netnsPath: string, commands: string[]): Promise<string> {
  return run(inNetns(netnsPath, ['ip', '-batch', '-']), { input: commands.join('\n') + '\n' });
}

export function nftApply(netnsPath: string, ruleset: string): Promise<string> {
  return run(inNetns(netnsPath, ['nft', '-f', '-']), { input: ruleset });
}

/**
 * Creates a persistent network namespace bound to the (empty, existing) file `path`: it lives until the file is
 * unmounted, with no process and no entry in /run/netns.
 */
export function createNetns(path: string): Promise<string> {
  return run(['unshare', `--net=${path}`, 'true']);
}

export async function removeNetns(path: string): Promise<void> {
  try {
    await run(['umount', path]);
  } catch (err) {
    // Already unmounted (e.g. removed by an earlier, interrupted clean-up): nothing left to do.
    if (!(err instanceof CommandError && /not mounted|no mount point|No such file/.test(err.stderr))) throw err;
  }
}

/** Kernel start time of a process (clock ticks since boot), to tell a recorded pid from a reused one. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) may contain spaces and parentheses, so count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** Pids of every process whose network namespace has inode `inode`. */
export function processesInNetns(inode: number): number[] {
  const want = `net:[${inode}]`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) === want) pids.push(Number(entry));
    } catch {
      // The process exited, or belongs to another user: not ours.
    }
  }
  return pids;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sends a signal to a process group, ignoring one that is already gone. */
export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // Gone already.
  }
}
