// Kubernetes core/v1 and apps/v1 kinds: the rules kube-apiserver applies that matter to a mesh (names, ports,
// labels, required fields). Container fields Ambit does not use are carried through unchecked.
import { z } from 'zod';
import { invalidValue } from '../kube-validation.js';
import { ALWAYS, annotationMap, dns1123Label, dns1123Subdomain, labelMap, nonEmptyString, objectMeta, port, portOrName, show } from './common.js';

const protocol = () => z.enum(['TCP', 'UDP', 'SCTP']);

export const namespaceSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Namespace'),
  metadata: objectMeta('dns1123-label'),
});

export const nodeSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Node'),
  metadata: objectMeta('dns1123-subdomain'),
});

export const serviceAccountSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('ServiceAccount'),
  metadata: objectMeta('dns1123-subdomain'),
});

const servicePort = z.looseObject({
  name: dns1123Label().optional(),
  protocol: protocol().optional(),
  port: port(),
  targetPort: portOrName().optional(),
  nodePort: z.int().optional(),
  appProtocol: z.string().optional(),
});

const serviceSpec = z
  .looseObject({
    type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']).optional(),
    selector: labelMap().optional(),
    ports: z.array(servicePort).optional(),
    clusterIP: z.string().optional(),
    clusterIPs: z.array(z.string()).optional(),
    externalName: z.string().optional(),
  })
  .superRefine((spec, ctx) => {
    const ports = Array.isArray(spec.ports) ? spec.ports : [];
    const headless = spec.clusterIP === 'None';
    if (spec.type === 'ExternalName') {
      if (!spec.externalName) ctx.addIssue({ code: 'custom', path: ['externalName'], message: 'required when type is ExternalName' });
    } else if (ports.length === 0 && !headless) {
      ctx.addIssue({ code: 'custom', path: ['ports'], message: 'required (at least one port) unless clusterIP is "None"' });
    }
    // kube-apiserver needs port names to tell several ports apart (Endpoints, named targetPorts).
    const seen = new Map<string, number>();
    ports.forEach((p, i) => {
      if (!p || typeof p !== 'object') return;
      if (ports.length > 1 && p.name === undefined) {
        ctx.addIssue({ code: 'custom', path: ['ports', i, 'name'], message: 'required when the Service has more than one port' });
      }
      if (typeof p.name === 'string') {
        const first = seen.get(p.name);
        if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['ports', i, 'name'], message: `duplicate port name ${show(p.name)} (also ports[${first}])` });
        else seen.set(p.name, i);
      }
    });
  }, ALWAYS);

export const serviceSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Service'),
  metadata: objectMeta('dns1035-label'),
  spec: serviceSpec,
});

const probe = z.looseObject({
  httpGet: z
    .looseObject({
      path: z.string().optional(),
      port: portOrName(),
      scheme: z.enum(['HTTP', 'HTTPS']).optional(),
      httpHeaders: z.array(z.looseObject({ name: z.string(), value: z.string() })).optional(),
    })
    .optional(),
  tcpSocket: z.looseObject({ port: portOrName() }).optional(),
  exec: z.looseObject({ command: z.array(z.string()) }).optional(),
  initialDelaySeconds: z.int().min(0).optional(),
  periodSeconds: z.int().min(1).optional(),
  timeoutSeconds: z.int().min(1).optional(),
  failureThreshold: z.int().min(1).optional(),
  successThreshold: z.int().min(1).optional(),
});

const volumeMount = z.looseObject({
  name: nonEmptyString(),
  mountPath: nonEmptyString(),
  readOnly: z.boolean().optional(),
});

/** kube-apiserver's validateLocalDescendingPath: a file under the volume, never outside it. */
const localDescendingPath = () =>
  z
    .string()
    .refine((p) => !p.startsWith('/'), { message: 'must be a relative path' })
    .refine((p) => !p.split('/').includes('..'), { message: "must not contain '..'" });

// Only the projected serviceAccountToken source and emptyDir are typed: the local cluster acts on them (it writes the
// token, it makes the directory); other volume types are carried through and not mounted.
const volume = z.looseObject({
  name: dns1123Label(),
  projected: z
    .looseObject({
      sources: z
        .array(
          z.looseObject({
            serviceAccountToken: z.looseObject({ audience: z.string().optional(), expirationSeconds: z.int().optional(), path: localDescendingPath() }).optional(),
          }),
        )
        .optional(),
    })
    .optional(),
  emptyDir: z.looseObject({}).optional(),
});

// Kubernetes' int64 user and group ids; the kernel's are 32-bit, and 4294967295 is (uid_t)-1.
const unixId = () => z.int().min(0).max(4294967294);
const securityContextFields = {
  runAsUser: unixId().optional(),
  runAsGroup: unixId().optional(),
  runAsNonRoot: z.boolean().optional(),
};

const container = z.looseObject({
  name: dns1123Label(),
  image: z.string().optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  env: z
    .array(
      z.looseObject({
        name: nonEmptyString(),
        value: z.string().optional(),
        valueFrom: z.looseObject({ fieldRef: z.looseObject({ fieldPath: z.string(), apiVersion: z.string().optional() }).optional() }).optional(),
      }),
    )
    .optional(),
  ports: z
    .array(z.looseObject({ name: z.string().max(15).optional(), containerPort: port(), protocol: protocol().optional() }))
    .optional(),
  workingDir: z.string().optional(),
  readinessProbe: probe.optional(),
  volumeMounts: z.array(volumeMount).optional(),
  securityContext: z
    .looseObject({
      ...securityContextFields,
      privileged: z.boolean().optional(),
      allowPrivilegeEscalation: z.boolean().optional(),
      capabilities: z.looseObject({ add: z.array(z.string()).optional(), drop: z.array(z.string()).optional() }).optional(),
    })
    .optional(),
});

const podSpec = z
  .looseObject({
    containers: z.array(container).min(1, { error: 'must have at least one container' }),
    volumes: z.array(volume).optional(),
    serviceAccountName: dns1123Subdomain().optional(),
    serviceAccount: dns1123Subdomain().optional(),
    nodeName: z.string().optional(),
    hostNetwork: z.boolean().optional(),
    restartPolicy: z.enum(['Always', 'OnFailure', 'Never']).optional(),
    hostname: dns1123Label().optional(),
    subdomain: dns1123Label().optional(),
    securityContext: z.looseObject({ ...securityContextFields, supplementalGroups: z.array(unixId()).optional() }).optional(),
  })
  .superRefine((spec, ctx) => {
    if (!Array.isArray(spec.containers)) return;
    const seen = new Map<string, number>();
    spec.containers.forEach((c, i) => {
      if (!c || typeof c.name !== 'string') return;
      const first = seen.get(c.name);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['containers', i, 'name'], message: `duplicate container name ${show(c.name)} (also containers[${first}])` });
      else seen.set(c.name, i);
    });
  }, ALWAYS);

export const podSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Pod'),
  metadata: objectMeta('dns1123-subdomain'),
  spec: podSpec,
  status: z.looseObject({}).optional(),
});

const labelSelector = z.looseObject({
  matchLabels: labelMap().optional(),
  matchExpressions: z
    .array(z.looseObject({ key: z.string(), operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']), values: z.array(z.string()).optional() }))
    .optional(),
});

/**
 * The most replicas one Deployment may ask for. kube-apiserver allows any int32, but Ambit holds every replica as a
 * workload in memory (the control plane, `ambit config ztunnel`), and the local cluster runs each as processes; this is
 * the local cluster's largest pod capacity (50 nodes of 253 pod addresses) rounded down, far beyond what one machine
 * runs. The local cluster also refuses more replicas than its own nodes have pod addresses.
 */
export const MAX_REPLICAS = 10_000;

const replicas = () =>
  z.int().superRefine((n, ctx) => {
    // ValidateNonnegativeField's message; the upper bound is Ambit's, worded the same way.
    if (n < 0) ctx.addIssue({ code: 'custom', message: invalidValue(n, 'must be greater than or equal to 0') });
    else if (n > MAX_REPLICAS) ctx.addIssue({ code: 'custom', message: invalidValue(n, `must be less than or equal to ${MAX_REPLICAS}`) });
  });

const deploymentSpec = z
  .looseObject({
    replicas: replicas().optional(),
    selector: labelSelector,
    template: z.looseObject({
      metadata: z.looseObject({ labels: labelMap().optional(), annotations: annotationMap().optional() }).optional(),
      spec: podSpec,
    }),
  })
  .superRefine((spec, ctx) => {
    const wanted = spec.selector?.matchLabels;
    if (!spec.selector || typeof spec.selector !== 'object') return;
    if ((!wanted || Object.keys(wanted).length === 0) && !spec.selector.matchExpressions?.length) {
      ctx.addIssue({ code: 'custom', path: ['selector'], message: 'empty selector is invalid for deployment' });
      return;
    }
    // Same check as kube-apiserver: the pods a Deployment creates must be selected by its own selector.
    const have = spec.template?.metadata?.labels ?? {};
    const missing = Object.entries(wanted ?? {}).filter(([k, v]) => have[k] !== v);
    if (missing.length > 0 && spec.template && typeof spec.template === 'object') {
      const path = spec.template.metadata?.labels ? ['template', 'metadata', 'labels'] : ['template'];
      ctx.addIssue({ code: 'custom', path, message: `selector does not match template labels (missing ${missing.map(([k, v]) => `${k}=${v}`).join(', ')})` });
    }
  }, ALWAYS);

export const deploymentSchema = z.looseObject({
  apiVersion: z.literal('apps/v1'),
  kind: z.literal('Deployment'),
  metadata: objectMeta('dns1123-subdomain'),
  spec: deploymentSpec,
});
