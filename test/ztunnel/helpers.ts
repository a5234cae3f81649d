// Shared fixtures for ztunnel control-side tests: a log that records lines, polling until a condition holds, and xDS
// objects in the model's form.
import { eventually as poll } from '../support/eventually.js';
import type { Address, Authorization } from '../../src/xds/types.js';
import { LogSink, type ZtunnelLogger } from '../../src/ztunnel/log.js';

/** A LogSink writing into memory (and to stderr with AMBIT_TEST_LOG), plus a way to search what was written. */
export class RecordingLog {
  readonly lines: string[] = [];
  readonly sink = new LogSink({
    level: 'debug',
    write: (line) => {
      this.lines.push(line);
      if (process.env.AMBIT_TEST_LOG) process.stderr.write(line);
    },
  });
  logger(target: string): ZtunnelLogger {
    return this.sink.logger(target);
  }
  has(fragment: string | RegExp): boolean {
    return this.lines.some((l) => (typeof fragment === 'string' ? l.includes(fragment) : fragment.test(l)));
  }
  count(fragment: string): number {
    return this.lines.filter((l) => l.includes(fragment)).length;
  }
}

/** `eventually` with this suite's default of 5 s, given as a plain number. */
export const eventually = <T>(what: string, check: () => T | Promise<T>, timeoutMs = 5000) => poll(what, check, { timeoutMs });

export function workload(name: string, ip: number[], opts: { sa?: string; ns?: string; policies?: string[]; node?: string } = {}): Address {
  const ns = opts.ns ?? 'default';
  return {
    workload: {
      uid: `Kubernetes//Pod/${ns}/${name}`,
      name,
      namespace: ns,
      addresses: [new Uint8Array(ip)],
      network: '',
      tunnelProtocol: 'HBONE',
      trustDomain: 'cluster.local',
      serviceAccount: opts.sa ?? 'default',
      node: opts.node ?? 'node-1',
      canonicalName: name,
      canonicalRevision: 'latest',
      workloadType: 'POD',
      workloadName: name,
      services: { [`${ns}/echo.${ns}.svc.cluster.local`]: { ports: [{ servicePort: 80, targetPort: 8080 }] } },
      authorizationPolicies: opts.policies ?? [],
      status: 'HEALTHY',
      clusterId: 'Kubernetes',
    },
  };
}

export function service(name: string, ns: string, vip: number[]): Address {
  return {
    service: {
      name,
      namespace: ns,
      hostname: `${name}.${ns}.svc.cluster.local`,
      addresses: [{ network: '', address: new Uint8Array(vip) }],
      ports: [{ servicePort: 80, targetPort: 8080 }],
      subjectAltNames: [],
    },
  };
}

export function policy(name: string, ns: string, action: 'ALLOW' | 'DENY', scope: Authorization['scope'] = 'NAMESPACE'): Authorization {
  return { name, namespace: ns, scope, action, rules: [{ clauses: [] }], dryRun: false };
}
