// Workload certificates from the mesh CA (IstioCertificateService/CreateCertificate over TLS). ztunnel authenticates
// as its node (a bearer token: its pod's service account token, bound to a pod on that node) and asks on behalf of
// the pods there, naming each pod's identity both in the CSR's URI SAN and in the request metadata
// `ImpersonatedIdentity`; the CA only signs identities of pods scheduled on that node. A waypoint authenticates with
// its own service account token and asks for that one identity. The token file is read for every request, so a
// refreshed token is used from then on.
//
// One request in flight per identity; certificates are cached and refreshed at half-life by a timer. While the CA is
// unreachable the current certificate keeps serving until it expires, and refreshes are retried with backoff.
//
// The calls share one channel and wait for it to be ready (until their deadline). The channel keeps reconnecting
// on its own back-off, capped below CONTROL_PLANE_BACKOFF.maxMs, whether calls are waiting or not; a call that fails
// fast while the channel backs off would instead stack our retry delay on the channel's. So once the CA answers
// again, a waiting call goes through when the channel connects, and a retry that is due goes through when it fires:
// either way within CONTROL_PLANE_BACKOFF.maxMs.
// `onRotate` tells the data path a new certificate exists: new TLS contexts use it, existing connections keep theirs.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { Backoff, CONTROL_PLANE_BACKOFF } from '../common/backoff.js';
import { parseHostPort } from '../common/ip.js';
import { createCsr, generateKeyPair, privateKeyToPem } from '../identity/csr.js';
import { splitPemBundle } from '../identity/verify.js';
import { WorkloadCertificate } from '../identity/workload-cert.js';
import type { Logger } from '../telemetry/log.js';
import { IMPERSONATED_IDENTITY, caServiceDefinition } from './protos.js';

export interface SecretManagerOptions {
  /** `host:port` of IstioCertificateService. */
  caAddress: string;
  /** Name the CA's serving certificate must carry (istiod's service name when the address is an IP). */
  serverName: string;
  /** Mesh root(s), PEM: verifies the CA and the certificates it returns. */
  rootPem: string;
  tokenFile: string;
  /** SECRET_TTL: lifetime requested (the CA may shorten it). */
  ttlSeconds: number;
  log: Logger;
  /** Retry backoff after a failed fetch: starts here, doubles, jittered, up to maxRetryMs (default CONTROL_PLANE_BACKOFF). */
  initialRetryMs?: number;
  maxRetryMs?: number;
  /** Deadline of one CA call. */
  requestTimeoutMs?: number;
}

/** ztunnel's certificate states as /config_dump shows them. */
export type CertificateState = 'Initializing' | 'Available' | 'Unavailable';

/** One certificate as ztunnel dumps it: serial number in decimal, validity in RFC 3339 (seconds, UTC). */
export interface CertDump {
  pem: string;
  serialNumber: string;
  validFrom: string;
  expirationTime: string;
}

const rfc3339 = (d: string) => new Date(d).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Reads the fields ztunnel shows from a PEM certificate; an unparsable one keeps only its PEM, as text. */
export function certDump(pem: string): CertDump {
  try {
    const x = new X509Certificate(pem);
    return { pem, serialNumber: BigInt(`0x${x.serialNumber}`).toString(10), validFrom: rfc3339(x.validFrom), expirationTime: rfc3339(x.validTo) };
  } catch {
    return { pem, serialNumber: '', validFrom: '', expirationTime: '' };
  }
}

export interface CertificateDump {
  identity: string;
  state: CertificateState;
  certChain: CertDump[];
  rootCerts: CertDump[];
  error?: string;
}

interface Entry {
  cert?: WorkloadCertificate;
  /** When the current certificate was received: the refresh timer counts half of its life from here. */
  receivedAt: number;
  inflight?: Promise<WorkloadCertificate>;
  timer?: NodeJS.Timeout;
  retry: Backoff;
  lastError?: string;
  /** Pods (ZDS adds) holding this identity; the entry is dropped when the last one leaves. */
  refs: number;
}

/** Never refresh more often than this, whatever the certificate's lifetime. */
const MIN_REFRESH_MS = 500;
/** setTimeout's limit. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The channel's reconnect back-off cap, before grpc-js's ±20 % jitter. */
const CHANNEL_MAX_BACKOFF_MS = Math.floor(CONTROL_PLANE_BACKOFF.maxMs / 1.25);

export class SecretManager {
  private readonly client: grpc.Client;
  private readonly entries = new Map<string, Entry>();
  private readonly rotateListeners = new Set<(cert: WorkloadCertificate) => void>();
  private readonly roots: string[];
  private closed = false;

  constructor(private readonly opts: SecretManagerOptions) {
    this.roots = splitPemBundle(opts.rootPem);
    if (this.roots.length === 0) throw new Error('SecretManager: the root certificate file holds no PEM certificate');
    const Ca = grpc.makeGenericClientConstructor(caServiceDefinition(), 'IstioCertificateService');
    const { host, port } = parseHostPort(opts.caAddress, 'CA_ADDRESS');
    this.client = new Ca(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`, grpc.credentials.createSsl(Buffer.from(opts.rootPem)), {
      'grpc.ssl_target_name_override': opts.serverName,
      'grpc.default_authority': opts.serverName,
      // grpc-js adds ±20 % jitter: 4 s keeps the channel's reconnects within CONTROL_PLANE_BACKOFF.maxMs.
      'grpc.initial_reconnect_backoff_ms': CONTROL_PLANE_BACKOFF.initialMs,
      'grpc.max_reconnect_backoff_ms': CHANNEL_MAX_BACKOFF_MS,
    });
  }

  /** The mesh roots peers' certificates are verified against. */
  rootPems(): string[] {
    return [...this.roots];
  }

  /**
   * A valid certificate for `identity`: the cached one while it has not expired (even past its refresh time, since a
   * refresh is already under way), else a new one from the CA. Concurrent callers share one CA request.
   */
  fetch(identity: string): Promise<WorkloadCertificate> {
    if (this.closed) return Promise.reject(new Error('SecretManager is closed'));
    const e = this.entry(identity);
    if (e.cert && !e.cert.isExpired()) return Promise.resolve(e.cert);
    return this.request(identity, e);
  }

  /** The cached certificate, if any and not expired; never calls the CA. */
  cached(identity: string): WorkloadCertificate | undefined {
    const c = this.entries.get(identity)?.cert;
    return c && !c.isExpired() ? c : undefined;
  }

  /** A pod with this identity arrived: keep its certificate fresh and fetch it now, before the first connection. */
  prefetch(identity: string): void {
    const e = this.entry(identity);
    e.refs++;
    if (!e.cert && !e.inflight) this.request(identity, e).catch(() => undefined); // logged in request(); retried by timer
  }

  /** A pod with this identity left; when no pod holds it any longer, forget the certificate and stop refreshing. */
  release(identity: string): void {
    const e = this.entries.get(identity);
    if (!e) return;
    e.refs = Math.max(0, e.refs - 1);
    if (e.refs > 0) return;
    clearTimeout(e.timer);
    this.entries.delete(identity);
  }

  /** Called with every newly issued certificate; returns the function that unregisters the listener. */
  onRotate(cb: (cert: WorkloadCertificate) => void): () => void {
    this.rotateListeners.add(cb);
    return () => this.rotateListeners.delete(cb);
  }

  /** `/config_dump` `certificates`. */
  certificates(): CertificateDump[] {
    return [...this.entries.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([identity, e]) => {
        const state: CertificateState = e.cert && !e.cert.isExpired() ? 'Available' : e.lastError ? 'Unavailable' : 'Initializing';
        const out: CertificateDump = {
          identity,
          state,
          certChain: (e.cert?.chainPem ?? []).map(certDump),
          rootCerts: (e.cert?.rootPems ?? this.roots).map(certDump),
        };
        if (e.lastError) out.error = e.lastError;
        return out;
      });
  }

  close(): void {
    this.closed = true;
    for (const e of this.entries.values()) clearTimeout(e.timer);
    this.entries.clear();
    this.client.close();
  }

  private entry(identity: string): Entry {
    let e = this.entries.get(identity);
    if (!e) {
      e = {
        receivedAt: 0,
        retry: new Backoff(this.opts.initialRetryMs ?? CONTROL_PLANE_BACKOFF.initialMs, this.opts.maxRetryMs ?? CONTROL_PLANE_BACKOFF.maxMs),
        refs: 0,
      };
      this.entries.set(identity, e);
    }
    return e;
  }

  private request(identity: string, e: Entry): Promise<WorkloadCertificate> {
    if (e.inflight) return e.inflight;
    const p = this.issue(identity).then(
      (cert) => {
        e.inflight = undefined;
        if (this.entries.get(identity) !== e) return cert; // released meanwhile: hand it out, keep nothing
        const replaced = e.cert !== undefined;
        e.cert = cert;
        e.receivedAt = Date.now();
        e.lastError = undefined;
        e.retry.reset();
        this.schedule(identity, e, this.refreshDelay(cert, e.receivedAt));
        this.opts.log.info(`${replaced ? 'refreshed' : 'fetched'} certificate`, {
          identity,
          expiration: cert.notAfter.toISOString(),
        });
        for (const cb of [...this.rotateListeners]) {
          try {
            cb(cert);
          } catch (err) {
            this.opts.log.error(`certificate rotation listener failed: ${(err as Error).stack ?? err}`);
          }
        }
        return cert;
      },
      (err: Error) => {
        e.inflight = undefined;
        e.lastError = err.message;
        if (this.entries.get(identity) === e && !this.closed) {
          const keeping = e.cert && !e.cert.isExpired() ? `; keeping the current certificate until ${e.cert.notAfter.toISOString()}` : '';
          const delay = e.retry.next();
          this.opts.log.warn(`failed to fetch certificate: ${err.message}${keeping}; retrying in ${delay}ms`, { identity });
          this.schedule(identity, e, delay);
        }
        throw err;
      },
    );
    e.inflight = p;
    return p;
  }

  /** Half-way through the certificate's life as seen from when it arrived (CAs backdate notBefore for skew). */
  private refreshDelay(cert: WorkloadCertificate, receivedAt: number): number {
    const start = Math.max(cert.notBefore.getTime(), receivedAt);
    const at = start + (cert.notAfter.getTime() - start) / 2;
    return Math.max(MIN_REFRESH_MS, at - Date.now());
  }

  private schedule(identity: string, e: Entry, delayMs: number): void {
    clearTimeout(e.timer);
    e.timer = setTimeout(() => {
      if (this.entries.get(identity) !== e || this.closed) return;
      this.request(identity, e).catch(() => undefined); // failures reschedule themselves
    }, Math.min(delayMs, MAX_TIMER_MS));
    e.timer.unref();
  }

  private async issue(identity: string): Promise<WorkloadCertificate> {
    const where = `certificate for ${identity} from the CA at ${this.opts.caAddress}`;
    let token: string;
    try {
      token = readFileSync(this.opts.tokenFile, 'utf8').trim();
    } catch (err) {
      throw new Error(`cannot request ${where}: cannot read token file ${this.opts.tokenFile}: ${(err as Error).message}`);
    }
    const keys = await generateKeyPair();
    const csr = await createCsr({ keys, uriSans: [identity] });
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    const request = {
      csr,
      validityDuration: this.opts.ttlSeconds,
      metadata: { fields: { [IMPERSONATED_IDENTITY]: { stringValue: identity } } },
    };
    const timeoutMs = this.opts.requestTimeoutMs ?? 10_000;
    const chain = await new Promise<string[]>((resolve, reject) => {
      const deadline = Date.now() + timeoutMs;
      (this.client as any).CreateCertificate(request, md, { deadline, waitForReady: true }, (err: grpc.ServiceError | null, res: { certChain?: string[] }) => {
        if (!err) return resolve(res.certChain ?? []);
        // A call that waited for a channel that never connected says only "deadline exceeded": say what it was.
        const unreachable = err.code === grpc.status.DEADLINE_EXCEEDED && this.client.getChannel().getConnectivityState(false) !== grpc.connectivityState.READY;
        const reason = unreachable ? `UNAVAILABLE: no connection to the CA within ${timeoutMs}ms` : `${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`;
        reject(new Error(`CA refused or failed ${where}: ${reason}`));
      });
    });
    if (chain.length === 0) throw new Error(`empty certificate chain in the CA's answer for ${identity}`);
    let cert: WorkloadCertificate;
    try {
      cert = WorkloadCertificate.fromPem({ keyPem: privateKeyToPem(keys.privateKey), chainPem: chain, rootPems: this.roots });
    } catch (err) {
      throw new Error(`invalid ${where}: ${(err as Error).message}`);
    }
    if (cert.identity !== identity) throw new Error(`the CA issued ${cert.identity} when asked for ${identity}`);
    return cert;
  }
}
