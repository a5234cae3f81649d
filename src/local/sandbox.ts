// Running a program "inside a pod": in the pod's network namespace, with a private mount namespace whose
// /etc/resolv.conf is the pod's (so nothing is written to the host's /etc) and a private UTS namespace whose
// hostname is the pod name. Used for containers, exec probes and `ambit exec` alike.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PodSandbox {
  netnsPath: string;
  resolvConfPath: string;
  hostname: string;
}

/** The repository (or installed package) root: its bin/ holds the sample programs pods run. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

// sethostname() (the `hostname` tool) works in a user namespace, where /proc/sys/kernel/hostname is not writable.
const ENTER_POD =
  'mount --bind "$1" /etc/resolv.conf && { hostname "$2" 2>/dev/null || echo "$2" > /proc/sys/kernel/hostname; } && shift 2 && exec "$@"';

/** argv that runs `argv` inside the pod sandbox; the program replaces the wrapper (same pid, same exit code). */
export function sandboxArgv(sandbox: PodSandbox, argv: string[]): string[] {
  return [
    'nsenter',
    `--net=${sandbox.netnsPath}`,
    '--',
    'unshare',
    '--mount',
    '--uts',
    '--propagation',
    'private',
    '--',
    'sh',
    '-c',
    ENTER_POD,
    'ambit-pod',
    sandbox.resolvConfPath,
    sandbox.hostname,
    ...argv,
  ];
}

/**
 * PATH for pod programs: the package's bin/ (sample apps) first, then the directory of the running node binary
 * (so `node` resolves even when it is not installed system-wide), then the supervisor's own PATH.
 */
export function podPath(basePath: string | undefined): string {
  const parts = [`${PACKAGE_ROOT}bin`, dirname(process.execPath), ...(basePath ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')];
  return [...new Set(parts.filter(Boolean))].join(':');
}
