// The analysis messages Ambit reports, with istioctl analyze's codes, names, levels and texts
// (istio/istio pkg/config/analysis/msg/messages.yaml), so that users grep, suppress and document them as they do
// with Istio. Only the messages some analyzer here can produce are listed.

export type Level = 'Error' | 'Warning' | 'Info';

/** Worst first, as istioctl sorts and compares them. */
export const LEVELS: readonly Level[] = ['Error', 'Warning', 'Info'];

export function levelRank(level: Level): number {
  return LEVELS.indexOf(level);
}

export interface MessageType {
  code: string;
  name: string;
  level: Level;
}

// Go's %v of a slice: the items separated by spaces, in brackets.
const goList = (items: ReadonlyArray<string | number>): string => `[${items.join(' ')}]`;
/** Go's %q of a string (for the values that appear here: no control characters). */
export const goQuote = (s: string): string => JSON.stringify(s);

export const MESSAGES = {
  ReferencedResourceNotFound: {
    code: 'IST0101', name: 'ReferencedResourceNotFound', level: 'Error',
    text: (reftype: string, refval: string) => `Referenced ${reftype} not found: ${goQuote(refval)}`,
  },
  NamespaceNotInjected: {
    code: 'IST0102', name: 'NamespaceNotInjected', level: 'Info',
    text: (ns: string) =>
      `The namespace is not enabled for Istio injection. Run 'kubectl label namespace ${ns} istio-injection=enabled' to enable it, or 'kubectl label namespace ${ns} istio-injection=disabled' to explicitly mark it as not needing injection.`,
  },
  PodMissingProxy: {
    code: 'IST0103', name: 'PodMissingProxy', level: 'Warning',
    text: (pod: string) => `The pod ${pod} is missing the Istio proxy. This can often be resolved by restarting or redeploying the workload.`,
  },
  SchemaValidationError: {
    code: 'IST0106', name: 'SchemaValidationError', level: 'Error',
    text: (err: string) => `Schema validation error: ${err}`,
  },
  ConflictingMeshGatewayVirtualServiceHosts: {
    code: 'IST0109', name: 'ConflictingMeshGatewayVirtualServiceHosts', level: 'Error',
    text: (virtualServices: string, host: string) =>
      `The VirtualServices ${virtualServices} associated with mesh gateway define the same host ${host} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.`,
  },
  VirtualServiceDestinationPortSelectorRequired: {
    code: 'IST0112', name: 'VirtualServiceDestinationPortSelectorRequired', level: 'Error',
    text: (destHost: string, destPorts: number[]) =>
      `This VirtualService routes to a service ${goQuote(destHost)} that exposes multiple ports ${goList(destPorts)}. Specifying a port in the destination is required to disambiguate.`,
  },
  PortNameIsNotUnderNamingConvention: {
    code: 'IST0118', name: 'PortNameIsNotUnderNamingConvention', level: 'Info',
    text: (portName: string, port: number, targetPort: string) =>
      `Port name ${portName} (port: ${port}, targetPort: ${targetPort}) doesn't follow the naming convention of Istio port.`,
  },
  ExternalNameServiceTypeInvalidPortName: {
    code: 'IST0150', name: 'ExternalNameServiceTypeInvalidPortName', level: 'Warning',
    text: () =>
      'Port name for ExternalName service is invalid. Proxy may prevent tcp named ports and unmatched traffic for ports serving TCP protocol from being forwarded correctly',
  },
  NamespaceMultipleInjectionLabels: {
    code: 'IST0123', name: 'NamespaceMultipleInjectionLabels', level: 'Warning',
    text: (labels: string[]) =>
      `The namespace has more than one type of injection labels ${goList(labels)}, which may lead to undefined behavior. Make sure only one injection label exists.`,
  },
  NoMatchingWorkloadsFound: {
    code: 'IST0127', name: 'NoMatchingWorkloadsFound', level: 'Warning',
    text: (labels: string) => `No matching workloads for this resource with the following labels: ${labels}`,
  },
  VirtualServiceUnreachableRule: {
    code: 'IST0130', name: 'VirtualServiceUnreachableRule', level: 'Warning',
    text: (ruleno: string, reason: string) => `VirtualService rule ${ruleno} not used (${reason}).`,
  },
  VirtualServiceIneffectiveMatch: {
    code: 'IST0131', name: 'VirtualServiceIneffectiveMatch', level: 'Info',
    text: (ruleno: string, matchno: string, dupno: string) => `VirtualService rule ${ruleno} match ${matchno} is not used (duplicate/overlapping match in rule ${dupno}).`,
  },
  VirtualServiceHostNotFoundInGateway: {
    code: 'IST0132', name: 'VirtualServiceHostNotFoundInGateway', level: 'Warning',
    text: (hosts: string[], virtualService: string, gateway: string) =>
      `one or more host ${goList(hosts)} defined in VirtualService ${virtualService} not found in Gateway ${gateway}.`,
  },
  SchemaWarning: {
    code: 'IST0133', name: 'SchemaWarning', level: 'Warning',
    text: (err: string) => `Schema validation warning: ${err}`,
  },
  ReferencedInternalGateway: {
    code: 'IST0165', name: 'ReferencedInternalGateway', level: 'Warning',
    text: (virtualService: string, gateway: string) => `Gateway reference in VirtualService ${virtualService} is to an implementation-generated internal Gateway: ${gateway}.`,
  },
  IneffectiveSelector: {
    code: 'IST0166', name: 'IneffectiveSelector', level: 'Warning',
    text: (gateway: string) => `Ineffective selector on Kubernetes Gateway ${gateway}. Use the TargetRef field instead.`,
  },
  IneffectivePolicy: {
    code: 'IST0167', name: 'IneffectivePolicy', level: 'Warning',
    text: (reason: string) => `The policy has no impact: ${reason}.`,
  },
  NegativeConditionStatus: {
    code: 'IST0171', name: 'NegativeConditionStatus', level: 'Warning',
    text: (type: string, reason: string, message: string) =>
      `A condition with a negative status is present: type=${type}, reason=${reason}, message=${message}.`,
  },
  DestinationRuleSubsetNotSelectPods: {
    code: 'IST0173', name: 'DestinationRuleSubsetNotSelectPods', level: 'Error',
    text: (subset: string) =>
      `The Subset ${subset} defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).`,
  },
  UnknownDestinationRuleHost: {
    code: 'IST0174', name: 'UnknownDestinationRuleHost', level: 'Warning',
    text: (host: string) => `The host ${host} defined in the DestinationRule does not match any services in the mesh.`,
  },
} as const satisfies Record<string, MessageType & { text: (...args: never[]) => string }>;

// Every code istioctl's messages.yaml defines (retired ones left out): `--suppress` with another code is warned about.
const ISTIO_CODES = new Set(
  ('0001 0002 0101 0102 0103 0106 0107 0108 0109 0110 0111 0112 0116 0118 0123 0125 0126 0127 0128 0129 0130 0131 0132 ' +
    '0133 0134 0135 0136 0137 0138 0139 0140 0141 0142 0143 0144 0145 0146 0147 0148 0149 0150 0151 0152 0153 0154 0155 ' +
    '0156 0157 0158 0159 0160 0161 0162 0163 0164 0165 0166 0167 0168 0169 0170 0171 0172 0173 0174 0175 0176 0177')
    .split(' ')
    .map((n) => `IST${n}`),
);

export function isKnownCode(code: string): boolean {
  return ISTIO_CODES.has(code);
}

/** Where the documentation of a message lives, as istioctl prints it. */
export function documentationUrl(code: string): string {
  return `https://istio.io/latest/docs/reference/config/analysis/${code.toLowerCase()}/?ref=istioctl-analyze`;
}
