// Running a program "inside a pod": in the pod's network namespace, with private mount, UTS and PID namespaces, and
// with the capabilities and user a container would have. Used for containers, exec probes and `ambit exec` alike.
//
// What the program sees (docs/local-cluster.md, "What a pod can reach"):
// - the machine's files, read-only, except the cluster's state directory (CA key, tokens, sockets, other pods'
//   files), which is hidden under an empty tmpfs;
// - its own /tmp (a directory of the pod, shared by its containers and exec sessions), its own /run, its own
//   /etc/resolv.conf, its own hostname;
// - its volumes (projected service account tokens, emptyDir) and the mesh root certificate at the paths Kubernetes
//   and Istio mount them;
// - only its own processes (a fresh /proc, whose kernel knobs — /proc/sys and the like — are read-only, as Docker
//   leaves them);
// - Docker's default capability set (no CAP_SYS_ADMIN, so it cannot undo the mounts or leave its namespaces; no
//   CAP_NET_ADMIN, so it cannot change the capture rules of its network namespace), and the user and group its
//   securityContext names.
import { readFileSync } from 'node:fs';
import { dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Container, PodSpec } from '../api/types.js';

/** A volume as the container sees it: `source` is a directory under the pod's sandbox directory. */
export interface SandboxMount {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface PodSandbox {
  netnsPath: string;
  hostname: string;
  /** The pod's sandbox directory on the machine: `resolv.conf`, `tmp/`, `volumes/<name>/`. */
  dir: string;
  /** Directories the pod must not see (the cluster's state directory). */
  masked: string[];
}

/** What one container gets inside its pod's sandbox: its volume mounts, user, groups and capabilities. */
export interface ContainerSandbox {
  mounts: SandboxMount[];
  security: ContainerSecurity;
}

/** The user, groups and capabilities of one container (from its and its pod's securityContext). */
export interface ContainerSecurity {
  runAsUser?: number;
  runAsGroup?: number;
  supplementalGroups?: number[];
  /** Capability names without CAP_, lower case; `all` when the container is privileged. */
  capabilities: string[] | 'all';
}

/** Docker's and containerd's default capability set, which Kubernetes containers get unless they add or drop. */
export const DEFAULT_CAPABILITIES = [
  'audit_write',
  'chown',
  'dac_override',
  'fowner',
  'fsetid',
  'kill',
  'mknod',
  'net_bind_service',
  'net_raw',
  'setfcap',
  'setgid',
  'setpcap',
  'setuid',
  'sys_chroot',
] as const;

/** The repository (or installed package) root: its bin/ holds the sample programs pods run. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Where the mesh root certificate appears in every pod: Istio's mount of the istio-ca-root-cert ConfigMap. */
export const POD_ROOT_CERT_DIR = '/var/run/secrets/istio';

// The program runs as a child of this shell, which is PID 1 of the pod's PID namespace: PID 1 ignores signals it has
// no handler for, so a program run as PID 1 would ignore the SIGTERM of a pod deletion. The supervisor signals the
// whole process group, which reaches the program directly. The pod's files are reached through fd 3 (opened before
// anything is masked, so the pod directory may live inside the masked state directory); `mount -c` keeps mount(8)
// from resolving /proc/self/fd/3 back to the masked path. Every other mount of the machine becomes read-only (a mount
// point whose name mountinfo escapes is skipped; the root is required). sethostname() (the `hostname` tool) works in a
// user namespace, where /proc/sys/kernel/hostname is not writable.
const ENTER_POD = `set -e
exec 3<"$1"; host=$2; shift 2
hostname "$host" 2>/dev/null || echo "$host" > /proc/sys/kernel/hostname
mount -t tmpfs -o mode=0755,size=16m,nodev,nosuid ambit-run /run
mount -t tmpfs -o mode=1777,size=64m,nodev,nosuid ambit-shm /dev/shm
while [ "$1" != ";" ]; do mount -t tmpfs -o mode=0700,size=4k ambit-masked "$1"; shift; done; shift
mount -c --bind /proc/self/fd/3/tmp /tmp
mount -o remount,bind,nodev,nosuid /tmp
fd=4
while [ "$1" != ";" ]; do eval "exec $fd<\\"\\$1\\""; mkdir -p "$1"; mount -c --bind "/proc/self/fd/$fd" "$1"; eval "exec $fd<&-"; shift; done; shift
mount -o remount,bind,ro /
for mp in $(cut -d' ' -f5 /proc/self/mountinfo); do
  case "$mp" in /|/proc|/proc/*|/run|/run/*|/dev/shm|/dev/pts|/dev/mqueue|/tmp) ;; *) mount -o remount,bind,ro "$mp" 2>/dev/null || true ;; esac
done
for p in /proc/sys /proc/sysrq-trigger /proc/irq /proc/bus; do [ -e "$p" ] || continue; mount --bind "$p" "$p"; mount -o remount,bind,ro "$p"; done
while [ "$1" != ";" ]; do
  case "$2" in /run/*|/var/run/*|/tmp/*) mkdir -p "$2" ;; esac
  mount -c --bind "/proc/self/fd/3/$1" "$2"
  mount -o "remount,bind,nodev,nosuid,$3" "$2"
  shift 3
done; shift
rc=$(readlink -m /etc/resolv.conf)
[ -e "$rc" ] || { mkdir -p "\${rc%/*}"; : > "$rc"; }
mount -c --bind /proc/self/fd/3/resolv.conf "$rc"
exec 3<&-
set +e
"$@"
exit $?`;

/**
 * Directories the pod needs that a mask hides: the package (sample programs, the proxies) and the node binary, when
 * they live under /tmp, /run or the state directory (a checkout in /tmp, say). They come back read-only.
 */
function pathsToKeep(masked: readonly string[]): string[] {
  const hidden = ['/tmp', '/run', '/var/run', ...masked];
  const under = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith(sep) ? dir : dir + sep);
  const wanted = [PACKAGE_ROOT.replace(/\/$/, ''), dirname(process.execPath)];
  return [...new Set(wanted.filter((p) => hidden.some((h) => under(p, h))))];
}

/** argv that runs `argv` inside the pod sandbox as `container` says; the exit code is the program's. */
export function sandboxArgv(sandbox: PodSandbox, container: ContainerSandbox, argv: string[]): string[] {
  const mounts = container.mounts.flatMap((m) => [m.source, m.target, m.readOnly ? 'ro' : 'rw']);
  return [
    'nsenter',
    `--net=${sandbox.netnsPath}`,
    '--',
    'unshare',
    '--mount',
    '--uts',
    '--pid',
    '--fork',
    // The pod's processes die with the supervised process, even when only it is killed (a probe's timeout).
    '--kill-child',
    '--mount-proc',
    '--propagation',
    'private',
    '--',
    'sh',
    '-c',
    ENTER_POD,
    'ambit-pod',
    sandbox.dir,
    sandbox.hostname,
    ...sandbox.masked,
    ';',
    ...pathsToKeep(sandbox.masked),
    ';',
    ...mounts,
    ';',
    ...privilegesArgv(container.security),
    ...argv,
  ];
}

/** setpriv(1) arguments that give the program the container's user, groups and capabilities. */
function privilegesArgv(security: ContainerSecurity): string[] {
  const out = ['setpriv'];
  if (security.runAsUser !== undefined) out.push(`--reuid=${security.runAsUser}`);
  // As a container runtime does: without runAsGroup the group is the image's, which is root's for the local cluster.
  if (security.runAsUser !== undefined || security.runAsGroup !== undefined) out.push(`--regid=${security.runAsGroup ?? 0}`);
  if (security.supplementalGroups?.length) out.push(`--groups=${security.supplementalGroups.join(',')}`);
  else if (security.runAsUser !== undefined || security.runAsGroup !== undefined) out.push('--clear-groups');
  if (security.capabilities !== 'all') {
    const caps = security.capabilities.map((c) => `+${c}`).join(',');
    out.push(`--bounding-set=-all${caps ? ',' + caps : ''}`);
  }
  out.push('--');
  return out;
}

/**
 * PATH for pod programs: the package's bin/ (sample apps) first, then the directory of the running node binary
 * (so `node` resolves even when it is not installed system-wide), then the supervisor's own PATH.
 */
export function podPath(basePath: string | undefined): string {
  const parts = [`${PACKAGE_ROOT}bin`, dirname(process.execPath), ...(basePath ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')];
  return [...new Set(parts.filter(Boolean))].join(':');
}

/** A container the kubelet cannot start as its spec says (Kubernetes' CreateContainerConfigError). */
export class ContainerConfigError extends Error {
  readonly reason = 'CreateContainerConfigError';
}

/** kubelet's format.Pod: `name_namespace(uid)`. */
function formatPod(pod: { name: string; namespace: string; uid: string }): string {
  return `${pod.name}_${pod.namespace}(${pod.uid})`;
}

/**
 * The user, groups and capabilities of a container, from its securityContext over its pod's, with the kubelet's
 * runAsNonRoot check (an image here has no USER, so it runs as root unless runAsUser says otherwise).
 */
export function containerSecurity(
  pod: { name: string; namespace: string; uid: string },
  spec: PodSpec,
  container: Container,
  mapped: { user: (id: number) => boolean; group: (id: number) => boolean } = { user: () => true, group: () => true },
): ContainerSecurity {
  const podCtx = spec.securityContext ?? {};
  const ctx = container.securityContext ?? {};
  const runAsUser = ctx.runAsUser ?? podCtx.runAsUser;
  const runAsGroup = ctx.runAsGroup ?? podCtx.runAsGroup;
  if (ctx.runAsNonRoot ?? podCtx.runAsNonRoot) {
    if (runAsUser === undefined) {
      throw new ContainerConfigError(`container has runAsNonRoot and image will run as root (pod: "${formatPod(pod)}", container: ${container.name})`);
    }
    if (runAsUser === 0) throw new ContainerConfigError(`container's runAsUser breaks non-root policy (pod: "${formatPod(pod)}", container: ${container.name})`);
  }
  for (const [field, id, isMapped] of [['runAsUser', runAsUser, mapped.user], ['runAsGroup', runAsGroup, mapped.group]] as const) {
    if (id !== undefined && !isMapped(id)) {
      throw new ContainerConfigError(`${field} ${id} cannot be used in a rootless cluster: its user namespace maps only the user that started it (run as root to use other ids)`);
    }
  }
  let capabilities: ContainerSecurity['capabilities'];
  if (ctx.privileged) capabilities = 'all';
  else {
    const name = (c: string) => c.toLowerCase().replace(/^cap_/, '');
    const drop = new Set((ctx.capabilities?.drop ?? []).map(name));
    const add = (ctx.capabilities?.add ?? []).map(name);
    if (add.includes('all')) capabilities = 'all';
    else {
      const kept = drop.has('all') ? [] : DEFAULT_CAPABILITIES.filter((c) => !drop.has(c));
      capabilities = [...new Set([...kept, ...add])];
    }
  }
  return {
    ...(runAsUser !== undefined ? { runAsUser } : {}),
    ...(runAsGroup !== undefined ? { runAsGroup } : {}),
    ...(podCtx.supplementalGroups?.length ? { supplementalGroups: podCtx.supplementalGroups } : {}),
    capabilities,
  };
}

/** Whether an id is mapped in this process's user namespace (any, as real root; only root, rootless). */
export function idMapper(mapFile: '/proc/self/uid_map' | '/proc/self/gid_map'): (id: number) => boolean {
  let ranges: [number, number][];
  try {
    ranges = readFileSync(mapFile, 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/).map(Number))
      .map(([inside, , count]) => [inside!, inside! + count!] as [number, number]);
  } catch {
    return () => true;
  }
  return (id) => ranges.some(([from, to]) => id >= from && id < to);
}
