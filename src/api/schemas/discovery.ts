// discovery.k8s.io/v1: EndpointSlice, with kube-apiserver's checks (pkg/apis/discovery/validation): the address
// type, each endpoint's addresses in that type, unique port names, the size limits.
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { invalidValue, isDNS1123Label, isDNS1123Subdomain, isQualifiedName } from '../kube-validation.js';
import { ALWAYS, checkedString, dns1123Label, objectMeta, port } from './common.js';

export const DISCOVERY_VERSIONS = ['discovery.k8s.io/v1'] as const;

/** kube-apiserver's maxEndpoints, maxAddresses and maxPorts of one slice. */
const MAX_ENDPOINTS = 1000;
const MAX_ADDRESSES = 100;
const MAX_PORTS = 20000;

const ADDRESS_TYPES = ['IPv4', 'IPv6', 'FQDN'] as const;
type AddressType = (typeof ADDRESS_TYPES)[number];

function addressProblem(type: AddressType, address: string): string | undefined {
  switch (type) {
    case 'IPv4':
      return isIPv4(address) ? undefined : invalidValue(address, 'must be a valid IPv4 address');
    case 'IPv6':
      return isIPv6(address) ? undefined : invalidValue(address, 'must be a valid IPv6 address');
    case 'FQDN': {
      const problems = isDNS1123Subdomain(address);
      return problems.length === 0 && address.includes('.') ? undefined : invalidValue(address, problems[0] ?? 'should be a domain with at least two segments separated by dots');
    }
  }
}

const endpoint = z.looseObject({
  addresses: z.array(z.string()).min(1, { error: 'must contain at least 1 address' }).max(MAX_ADDRESSES, { error: `must have at most ${MAX_ADDRESSES} items` }),
  conditions: z.looseObject({ ready: z.boolean().optional(), serving: z.boolean().optional(), terminating: z.boolean().optional() }).optional(),
  hostname: dns1123Label().optional(),
  targetRef: z
    .looseObject({ kind: z.string().optional(), namespace: z.string().optional(), name: z.string().optional(), uid: z.string().optional(), apiVersion: z.string().optional() })
    .optional(),
  nodeName: checkedString((s) => isDNS1123Subdomain(s).map((m) => invalidValue(s, m))).optional(),
  zone: z.string().optional(),
});

const endpointPort = z.looseObject({
  name: checkedString((s) => (s === '' ? undefined : isDNS1123Label(s).map((m) => invalidValue(s, m)))).optional(),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
  // The port of the endpoints (a Service's target port); absent means every port.
  port: port().optional(),
  appProtocol: checkedString((s) => isQualifiedName(s).map((m) => invalidValue(s, m))).optional(),
});

export const endpointSliceSchema = z
  .looseObject({
    apiVersion: z.literal('discovery.k8s.io/v1'),
    kind: z.literal('EndpointSlice'),
    metadata: objectMeta('dns1123-subdomain'),
    addressType: z.enum(ADDRESS_TYPES),
    endpoints: z.array(endpoint).max(MAX_ENDPOINTS, { error: `must have at most ${MAX_ENDPOINTS} items` }),
    ports: z.array(endpointPort).max(MAX_PORTS, { error: `must have at most ${MAX_PORTS} items` }).optional(),
  })
  .superRefine((slice, ctx) => {
    const type = ADDRESS_TYPES.includes(slice.addressType) ? slice.addressType : undefined;
    if (type !== undefined && Array.isArray(slice.endpoints)) {
      slice.endpoints.forEach((ep, i) => {
        if (!Array.isArray(ep?.addresses)) return;
        ep.addresses.forEach((address, j) => {
          const problem = typeof address === 'string' ? addressProblem(type, address) : undefined;
          if (problem) ctx.addIssue({ code: 'custom', path: ['endpoints', i, 'addresses', j], message: problem });
        });
      });
    }
    const seen = new Map<string, number>();
    (Array.isArray(slice.ports) ? slice.ports : []).forEach((p, i) => {
      if (typeof p?.name !== 'string') return;
      const first = seen.get(p.name);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['ports', i, 'name'], message: `Duplicate value: ${JSON.stringify(p.name)}` });
      else seen.set(p.name, i);
    });
  }, ALWAYS);
