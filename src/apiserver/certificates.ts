// The API server's PKI, as kubeadm and kind make it: a CA of its own, a serving certificate for the addresses
// clients dial, and client certificates whose subject is the user (CN) and its groups (O).
import { generateKeyPairSync } from 'node:crypto';
import { createRootCA, signCertificate } from '../identity/certs.js';

const TTL_SECONDS = 365 * 24 * 3600;

export interface ClientCertificate {
  cert: string;
  key: string;
}

export interface ApiCertificates {
  ca: string;
  /** The serving certificate and key. */
  serving: ClientCertificate;
  /** One client certificate per requested user. */
  clients: Record<string, ClientCertificate>;
}

function keyPair(): { publicKey: string; privateKey: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/**
 * Makes a CA, a serving certificate valid for `ipSans` plus the `kubernetes.default.svc` names, and a client
 * certificate per user (`{ admin: { user: 'kubernetes-admin', groups: ['system:masters'] } }`).
 */
export async function createApiCertificates(ipSans: string[], users: Record<string, { user: string; groups: string[] }>): Promise<ApiCertificates> {
  const ca = await createRootCA({ trustDomain: 'kubernetes', commonName: 'kubernetes', ttlSeconds: TTL_SECONDS * 10 });
  const sign = async (subject: string, extra: { ipSans?: string[]; dnsSans?: string[] }) => {
    const keys = keyPair();
    const cert = await signCertificate({ publicKey: keys.publicKey, issuerCertPem: ca.certPem, issuerKeyPem: ca.keyPem, uriSans: [], ttlSeconds: TTL_SECONDS, subject, ...extra });
    return { cert, key: keys.privateKey };
  };
  const serving = await sign('CN=kube-apiserver', {
    ipSans,
    dnsSans: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
  });
  const clients: Record<string, ClientCertificate> = {};
  for (const [id, u] of Object.entries(users)) {
    const subject = [...u.groups.map((g) => `O=${g}`), `CN=${u.user}`].join(', ');
    clients[id] = await sign(subject, {});
  }
  return { ca: ca.certPem, serving, clients };
}

/** A kubeconfig (kind's shape: cluster, user and context share one name) for a server and a client certificate. */
export function kubeconfigFor(name: string, server: string, ca: string, client: ClientCertificate): Record<string, unknown> {
  const b64 = (pem: string) => Buffer.from(pem).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: [{ name, cluster: { server, 'certificate-authority-data': b64(ca) } }],
    users: [{ name, user: { 'client-certificate-data': b64(client.cert), 'client-key-data': b64(client.key) } }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    'current-context': name,
  };
}
