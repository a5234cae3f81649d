// How the kubelet turns a pod's spec into what its containers get on this machine: the pod's sandbox directory, each
// container's mounts, user and capabilities, its environment, and the pod's projected service account tokens.
import { chmodSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';
import type { Container, Pod, PodSpec } from '../../api/types.js';
import { KUBERNETES_TOKEN_ISSUER } from '../../controlplane/auth.js';
import { resolvConf } from '../dns.js';
import { CLUSTER_DNS_IP } from '../layout.js';
import type { NodeRuntime } from '../nodes.js';
import {
  ContainerConfigError,
  POD_ROOT_CERT_DIR,
  containerSecurity,
  idMaps,
  podPath,
  type ContainerSandbox,
  type PodSandbox,
  type SandboxMount,
} from '../sandbox.js';
import { DEFAULT_TOKEN_EXPIRATION_SECONDS, type ProjectedToken } from '../tokens.js';

/** Which user and group ids containers may run as: any as real root, only root in a rootless cluster. */
const ID_MAPS = idMaps();

/** The pod a container belongs to, as these functions need it. */
export interface PodIdentity {
  namespace: string;
  name: string;
  uid: string;
  sandbox: PodSandbox;
}

/**
 * The pod's sandbox directory (what its containers see of the machine beyond the host's files): its resolv.conf, a
 * /tmp shared by its containers, its volumes and the mesh root certificate, as Istio's istio-ca-root-cert ConfigMap
 * gives it to every namespace.
 */
export function makeSandboxDir(podDir: string, namespace: string, rootCert: string): string {
  const dir = `${podDir}/sandbox`;
  mkdirSync(`${dir}/tmp`, { recursive: true });
  chmodSync(`${dir}/tmp`, 0o1777);
  mkdirSync(`${dir}/run`, { recursive: true });
  mkdirSync(`${dir}/volumes`, { recursive: true });
  writeFileSync(`${dir}/resolv.conf`, resolvConf(namespace, CLUSTER_DNS_IP));
  mkdirSync(`${dir}/istio-ca-root-cert`, { recursive: true });
  if (existsSync(rootCert)) copyFileSync(rootCert, `${dir}/istio-ca-root-cert/root-cert.pem`);
  return dir;
}

/** Where a file of a pod's volume lives on this machine, as the kubelet keeps it under the pod's directory. */
function volumeFile(pod: PodIdentity, volume: string, path: string): string {
  return `${pod.sandbox.dir}/volumes/${volume}/${path}`;
}

/**
 * A container's mounts (its projected token and emptyDir volumes, and the mesh root certificate unless it mounts
 * something there itself), user and capabilities; or the error the kubelet would report instead of starting it.
 * `note` writes a line to the container's log (a volume the local cluster does not mount).
 */
export function containerSandbox(pod: PodIdentity, spec: PodSpec, c: Container, note: (line: string) => void): ContainerSandbox | ContainerConfigError {
  const mounts: SandboxMount[] = [];
  for (const m of c.volumeMounts ?? []) {
    const volume = spec.volumes?.find((v) => v.name === m.name);
    if (!volume) return new ContainerConfigError(`cannot find volume "${m.name}" to mount into container "${c.name}"`);
    if (!volume.projected && !volume.emptyDir) {
      note(`ambit: volume ${m.name} is not mounted: the local cluster mounts projected service account tokens and emptyDir volumes only\n`);
      continue;
    }
    const target = posix.normalize(m.mountPath);
    if (!/^\/(tmp|run|var\/run)(\/|$)/.test(target) && !existsSync(target)) {
      return new ContainerConfigError(
        `mountPath ${target} of volume "${m.name}" does not exist on this machine: the local cluster mounts volumes on existing directories, or anywhere under /tmp, /run and /var/run`,
      );
    }
    const source = `volumes/${m.name}`;
    mkdirSync(`${pod.sandbox.dir}/${source}`, { recursive: true });
    // Kubernetes' modes: emptyDir is world-writable; a projected volume's directory is readable, its files are not.
    chmodSync(`${pod.sandbox.dir}/${source}`, volume.emptyDir ? 0o777 : 0o755);
    // Projected volumes are read-only in Kubernetes whatever the mount says.
    mounts.push({ source, target, readOnly: Boolean(volume.projected) || (m.readOnly ?? false) });
  }
  if (!mounts.some((m) => m.target === POD_ROOT_CERT_DIR)) mounts.push({ source: 'istio-ca-root-cert', target: POD_ROOT_CERT_DIR, readOnly: true });
  try {
    const security = containerSecurity({ name: pod.name, namespace: pod.namespace, uid: pod.uid }, spec, c, ID_MAPS);
    return { mounts, security, ...(c.workingDir ? { workingDir: c.workingDir } : {}) };
  } catch (err) {
    if (err instanceof ContainerConfigError) return err;
    throw err;
  }
}

/**
 * The pod's projected service account tokens, as the kubelet requests them: audience and expirationSeconds from the
 * source, defaulting to the API server's own audience (its issuer, as kube-apiserver's --api-audiences) and an hour.
 * `owner` is the uid owning the files (see Kubelet.startPod).
 */
export function projectedTokens(pod: PodIdentity, spec: PodSpec, owner: number | undefined): ProjectedToken[] {
  return (spec.volumes ?? []).flatMap((v) =>
    (v.projected?.sources ?? []).flatMap(({ serviceAccountToken: t }) =>
      t
        ? [{
            file: volumeFile(pod, v.name, t.path),
            // An empty audience is unset, as in Kubernetes.
            request: { audiences: [t.audience || KUBERNETES_TOKEN_ISSUER], expirationSeconds: t.expirationSeconds ?? DEFAULT_TOKEN_EXPIRATION_SECONDS },
            ...(owner !== undefined ? { owner } : {}),
          }]
        : [],
    ),
  );
}

/** A container's environment: the kubelet's own variables, then its `env` with `$(VAR)` references and fieldRefs. */
export function containerEnv(
  pod: Pod,
  c: Container,
  ip: string,
  node: NodeRuntime,
  basePath: string | undefined,
  log: (line: string) => void,
): Record<string, string> {
  const env: Record<string, string> = {
    PATH: podPath(basePath ?? process.env.PATH),
    HOSTNAME: pod.spec.hostname ?? pod.metadata.name,
    HOME: '/root',
  };
  const fields: Record<string, string | undefined> = {
    'metadata.name': pod.metadata.name,
    'metadata.namespace': pod.metadata.namespace,
    'metadata.uid': pod.metadata.uid,
    'status.podIP': ip,
    'status.hostIP': node.ip,
    'spec.nodeName': node.name,
    'spec.serviceAccountName': pod.spec.serviceAccountName ?? 'default',
  };
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = expandRefs(e.value, env);
    else if (e.valueFrom?.fieldRef) {
      const path = e.valueFrom.fieldRef.fieldPath;
      const label = /^metadata\.labels\['(.+)'\]$/.exec(path);
      const value = label ? pod.metadata.labels?.[label[1]!] : fields[path];
      if (value !== undefined) env[e.name] = value;
      else log(`pod ${pod.metadata.namespace}/${pod.metadata.name}: env ${e.name}: unsupported fieldRef ${path}`);
    } else env[e.name] = '';
  }
  return env;
}

/** Kubernetes' `$(VAR)` expansion in env values, against the variables defined before. */
function expandRefs(value: string, env: Record<string, string>): string {
  return value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name: string) => env[name] ?? all);
}
