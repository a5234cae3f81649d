// Running a program "inside a pod": in the pod's network namespace, with private mount, UTS, IPC and PID namespaces,
// and with the user, groups and capabilities a container would have. Used for containers, exec probes and `ambit exec`
// alike.
//
// What the program sees (docs/local-cluster.md, "What a pod can reach"):
// - the machine's files, read-only and nodev, except the cluster's state directory (CA key, tokens, sockets, other
//   pods' files), which is hidden under an empty tmpfs;
// - its own /tmp and /run (directories of the pod, shared by its containers and exec sessions), its own /dev (a
//   tmpfs with null, zero, full, random, urandom and tty, a private devpts and /dev/shm), its own /etc/resolv.conf
//   and hostname;
// - its volumes (projected service account tokens, emptyDir) and the mesh root certificate at the paths Kubernetes
//   and Istio mount them;
// - only its own processes (a fresh /proc, whose kernel knobs — /proc/sys and the like — are read-only, as Docker
//   leaves them) and its own System V IPC;
// - the container runtimes' default capability set (no CAP_SYS_ADMIN, so it cannot undo the mounts or leave its
//   namespaces; no CAP_NET_ADMIN, so it cannot change the capture rules of its network namespace), and the user and
//   groups its securityContext names. The pod's PID 1 already runs with them.
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

/** What one container gets inside its pod's sandbox: its volume mounts, working directory, user and capabilities. */
export interface ContainerSandbox {
  mounts: SandboxMount[];
  /** Entered once the sandbox is built (so it is resolved in the pod's view of the machine); default `/`. */
  workingDir?: string;
  security: ContainerSecurity;
}

/** The user, groups and capabilities of one container (from its and its pod's securityContext). */
export interface ContainerSecurity {
  runAsUser?: number;
  runAsGroup?: number;
  supplementalGroups?: number[];
  /** Drop supplementary groups (not possible where setgroups(2) is denied: a rootless cluster's user namespace). */
  clearGroups: boolean;
  /** allowPrivilegeEscalation: false. */
  noNewPrivs: boolean;
  /** Capability names without CAP_, lower case; `all` when the container is privileged. */
  capabilities: string[] | 'all';
}

/** Linux's capabilities (capability.h up to CAP_CHECKPOINT_RESTORE), by the names Kubernetes uses without CAP_. */
export const LINUX_CAPABILITIES = [
  'chown', 'dac_override', 'dac_read_search', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap',
  'linux_immutable', 'net_bind_service', 'net_broadcast', 'net_admin', 'net_raw', 'ipc_lock', 'ipc_owner',
  'sys_module', 'sys_rawio', 'sys_chroot', 'sys_ptrace', 'sys_pacct', 'sys_admin', 'sys_boot', 'sys_nice',
  'sys_resource', 'sys_time', 'sys_tty_config', 'mknod', 'lease', 'audit_write', 'audit_control', 'setfcap',
  'mac_override', 'mac_admin', 'syslog', 'wake_alarm', 'block_suspend', 'audit_read', 'perfmon', 'bpf',
  'checkpoint_restore',
] as const;

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

// The sandbox is built by this script, run as PID 1 of the pod's PID namespace with every capability; it ends by
// exec'ing setpriv, which drops to the container's user and capabilities and execs the pod's init shell (see
// privilegesArgv), so nothing in the pod keeps more privilege than the container. Arguments: the sandbox directory,
// the hostname, the working directory, then the paths to keep, the paths to mask and the volume mounts (source,
// target, ro|rw), each list ended by ";", then the setpriv command line.
// - The pod's files are reached through fd 3 and the kept paths through fds 4 to 9, all opened before anything is
//   masked (the pod directory may live inside the masked state directory); `mount -c` keeps mount(8) from resolving
//   /proc/self/fd/N back to the masked path.
// - /dev is built in a scratch tmpfs mounted on /tmp (the machine's /dev must stay reachable to bind its harmless
//   nodes), then bound onto /dev and the scratch mount detached (a rootless cluster's user namespace may not move it).
// - Every other mount of the machine is remounted read-only and nodev; the script stops if one cannot be (a mount
//   point already hidden by a mask, or a namespace file, is skipped).
// - sethostname() (the `hostname` tool) works in a user namespace, where /proc/sys/kernel/hostname is not writable.
const ENTER_POD = `set -ef
exec 3<"$1"; host=$2; wd=$3; shift 3
hostname "$host" 2>/dev/null || echo "$host" > /proc/sys/kernel/hostname
fd=4
while [ "$1" != ";" ]; do eval "exec $fd<\\"\\$1\\"; keep$fd=\\$1"; fd=$((fd + 1)); shift; done; shift
lastkeep=$((fd - 1))
while [ "$1" != ";" ]; do mount -t tmpfs -o mode=0700,size=4k,nodev,nosuid,noexec ambit-masked "$1"; shift; done; shift
mount -t tmpfs -o mode=0755,size=64k,nosuid,noexec ambit-dev /tmp
for n in null zero full random urandom tty; do : > "/tmp/$n"; mount --bind "/dev/$n" "/tmp/$n"; done
mkdir /tmp/pts /tmp/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 ambit-devpts /tmp/pts
ln -s pts/ptmx /tmp/ptmx
mount -t tmpfs -o mode=1777,size=64m,nodev,nosuid ambit-shm /tmp/shm
ln -s /proc/self/fd /tmp/fd; ln -s fd/0 /tmp/stdin; ln -s fd/1 /tmp/stdout; ln -s fd/2 /tmp/stderr
mount --rbind /tmp /dev
umount -l /tmp
mount -c --bind /proc/self/fd/3/run /run
mount -o remount,bind,nodev,nosuid /run
mount -c --bind /proc/self/fd/3/tmp /tmp
mount -o remount,bind,nodev,nosuid /tmp
fd=4
while [ "$fd" -le "$lastkeep" ]; do
  eval "k=\\$keep$fd"
  mkdir -p "$k"; mount -c --bind "/proc/self/fd/$fd" "$k"; mount -o remount,bind,ro,nodev,nosuid "$k"; eval "exec $fd<&-"
  fd=$((fd + 1))
done
mounts=$(sed 's/^[^ ]* [^ ]* [^ ]* [^ ]* \\([^ ]*\\) .* - \\([^ ]*\\) .*/\\1 \\2/' /proc/self/mountinfo)
while read -r mp fstype; do
  mp=$(printf '%b' "$mp")
  case "$mp" in /proc|/proc/*|/dev/*|/run|/run/*|/tmp) continue ;; esac
  [ "$fstype" != nsfs ] && [ -e "$mp" ] || continue
  mount -o remount,bind,ro,nodev "$mp"
done <<MOUNTS
$mounts
MOUNTS
for p in /proc/sys /proc/sysrq-trigger /proc/irq /proc/bus; do [ -e "$p" ] || continue; mount --bind "$p" "$p"; mount -o remount,bind,ro "$p"; done
while [ "$1" != ";" ]; do
  case "$2" in /run/*|/var/run/*|/tmp/*) mkdir -p "$2" ;; esac
  mount -c --bind "/proc/self/fd/3/$1" "$2"
  mount -o "remount,bind,nodev,nosuid,$3" "$2"
  shift 3
done; shift
rc=$(readlink -m /etc/resolv.conf)
case "$rc" in /run/*) mkdir -p "\${rc%/*}"; [ -e "$rc" ] || : > "$rc" ;; esac
mount -c --bind /proc/self/fd/3/resolv.conf "$rc"
exec 3<&-
cd "$wd" 2>/dev/null || { echo "ambit: workingDir $wd does not exist in the pod; starting in /" >&2; cd /; }
exec "$@"`;

/**
 * Directories the pod needs that a mask hides: the package (sample programs, the proxies) and the node binary, when
 * they live under /tmp, /run or the state directory (a checkout in /tmp, say). They come back read-only.
 */
function pathsToKeep(masked: readonly string[]): string[] {
  const hidden = ['/tmp', '/run', '/var/run', ...masked];
  const under = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith(sep) ? dir : dir + sep);
  const wanted = [PACKAGE_ROOT.replace(/\/$/, ''), dirname(process.execPath)];
  // Two at most: they are opened as fds 4 to 9 (the shell's limit).
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
    '--ipc',
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
    container.workingDir ?? '/',
    ...pathsToKeep(sandbox.masked),
    ';',
    ...sandbox.masked,
    ';',
    ...mounts,
    ';',
    ...privilegesArgv(container.security),
    ...argv,
  ];
}

// The pod's PID 1, after setpriv: it runs the program as its child, because a PID 1 ignores the signals it has no
// handler for (a program run as PID 1 would ignore the SIGTERM of a pod deletion). The supervisor signals the whole
// process group, which reaches the program directly; the shell then exits with the program's status.
const POD_INIT = ['sh', '-c', '"$@"; exit $?', 'ambit-init'];

/** setpriv(1) then the pod's init: the container's user, groups and capabilities from PID 1 on. */
function privilegesArgv(security: ContainerSecurity): string[] {
  const out = ['setpriv'];
  if (security.runAsUser !== undefined) out.push(`--reuid=${security.runAsUser}`);
  // As a container runtime does: without runAsGroup the group is the image's, which is root's for the local cluster.
  if (security.runAsUser !== undefined || security.runAsGroup !== undefined) out.push(`--regid=${security.runAsGroup ?? 0}`);
  if (security.supplementalGroups?.length) out.push(`--groups=${security.supplementalGroups.join(',')}`);
  else if (security.clearGroups && (security.runAsUser !== undefined || security.runAsGroup !== undefined)) out.push('--clear-groups');
  if (security.noNewPrivs) out.push('--no-new-privs');
  if (security.capabilities !== 'all') {
    const caps = security.capabilities.map((c) => `+${c}`).join(',');
    out.push(`--bounding-set=-all${caps ? ',' + caps : ''}`);
  }
  out.push('--', ...POD_INIT);
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

/** What this process's user namespace allows: which user and group ids exist, and whether setgroups(2) works. */
export interface IdMaps {
  user: (id: number) => boolean;
  group: (id: number) => boolean;
  setgroups: boolean;
}

const ANY_ID: IdMaps = { user: () => true, group: () => true, setgroups: true };

/**
 * The user, groups and capabilities of a container, from its securityContext over its pod's, with the kubelet's
 * runAsNonRoot check (an image here has no USER, so it runs as root unless runAsUser says otherwise).
 */
export function containerSecurity(
  pod: { name: string; namespace: string; uid: string },
  spec: PodSpec,
  container: Container,
  ids: IdMaps = ANY_ID,
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
  const rootless = 'cannot be used in a rootless cluster: its user namespace maps only the user that started it (run as root to use other ids)';
  if (runAsUser !== undefined && !ids.user(runAsUser)) throw new ContainerConfigError(`runAsUser ${runAsUser} ${rootless}`);
  if (runAsGroup !== undefined && !ids.group(runAsGroup)) throw new ContainerConfigError(`runAsGroup ${runAsGroup} ${rootless}`);
  if (podCtx.supplementalGroups?.length && !ids.setgroups) throw new ContainerConfigError(`supplementalGroups ${rootless}`);
  return {
    ...(runAsUser !== undefined ? { runAsUser } : {}),
    ...(runAsGroup !== undefined ? { runAsGroup } : {}),
    ...(podCtx.supplementalGroups?.length ? { supplementalGroups: podCtx.supplementalGroups } : {}),
    clearGroups: ids.setgroups,
    noNewPrivs: ctx.allowPrivilegeEscalation === false,
    capabilities: ctx.privileged ? 'all' : capabilitySet(ctx.capabilities),
  };
}

/**
 * The capabilities of a non-privileged container, in containerd's order: `add: [ALL]` starts from every capability
 * and `drop: [ALL]` from none (else the default set), then the other adds are added and the other drops removed.
 */
function capabilitySet(caps: { add?: string[]; drop?: string[] } | undefined): string[] | 'all' {
  const known = new Set<string>(LINUX_CAPABILITIES);
  const names = (list: string[] | undefined, field: string) =>
    (list ?? []).map((c) => {
      const name = c.toLowerCase().replace(/^cap_/, '');
      if (name !== 'all' && !known.has(name)) throw new ContainerConfigError(`unknown capability ${JSON.stringify(c)} in capabilities.${field}`);
      return name;
    });
  const add = names(caps?.add, 'add');
  const drop = names(caps?.drop, 'drop');
  let set = new Set<string>(add.includes('all') ? LINUX_CAPABILITIES : DEFAULT_CAPABILITIES);
  if (drop.includes('all')) set = new Set();
  for (const c of add) if (c !== 'all') set.add(c);
  for (const c of drop) set.delete(c);
  return set.size === LINUX_CAPABILITIES.length ? 'all' : [...set];
}

/** This process's user namespace: any id as real root; only root, without setgroups(2), in a rootless cluster. */
export function idMaps(): IdMaps {
  let setgroups = true;
  try {
    setgroups = readFileSync('/proc/self/setgroups', 'utf8').trim() !== 'deny';
  } catch {
    // No such file: a kernel without user namespaces, so real root.
  }
  return { user: idMapper('/proc/self/uid_map'), group: idMapper('/proc/self/gid_map'), setgroups };
}

function idMapper(mapFile: '/proc/self/uid_map' | '/proc/self/gid_map'): (id: number) => boolean {
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
