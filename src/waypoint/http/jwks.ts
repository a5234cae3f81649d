// The keys JWT rules verify with: a rule's inline `jwks`, or the JWKS behind its `jwksUri` (else its issuer's OIDC
// discovery document), fetched by the waypoint like any of its requests (through the mesh when the host is a mesh
// Service) and cached: refreshed in the background after CACHE_MS (Envoy's remote_jwks cache duration as istiod sets
// it for mesh hosts), fetched again when a token names a key id the set lacks (at most once per UNKNOWN_KID_MS), the
// last good set kept when a fetch fails. A rule whose keys were never fetched has none: its tokens are refused
// (fail closed) while requests without a token still pass.
import type { JWK } from 'jose';
import type { Logger } from '../../telemetry/log.js';
import type { WaypointJwtRule } from '../../xds/types.js';

/** Envoy's remote_jwks cache duration as istiod sets it for a JWKS served from the mesh. */
const CACHE_MS = 5 * 60_000;
/** The least time between fetches caused by unknown key ids. */
const UNKNOWN_KID_MS = 5_000;
/** A JWKS document is small; anything larger is refused. */
export const MAX_JWKS_BYTES = 1 << 20;
/** Istio's default `timeout` of a JWT rule. */
const DEFAULT_TIMEOUT_MS = 5_000;

/** Where the waypoint gets a document over HTTP(S); rejects with a reason on any failure or non-200 answer. */
export type JwksFetch = (url: string, timeoutMs: number) => Promise<string>;

export interface JwksSource {
  /** The keys of a rule's set, fetching them if needed; undefined when none could ever be fetched. */
  keys(rule: WaypointJwtRule, kid: string | undefined): Promise<JWK[] | undefined>;
  /** Each fetched set: its URL, how many keys it holds, and the last fetch error while it persists. */
  status(): { uri: string; keys: number; lastError?: string }[];
}

interface RemoteSet {
  keys: JWK[] | undefined;
  fetchedAt: number;
  /** The fetch in progress, if any. */
  pending: Promise<void> | undefined;
  lastError: string | undefined;
  /** Fetches failed in a row: the next is not tried before FAILURE_BACKOFF_MS × 2^(n-1) (at most MAX_BACKOFF_MS). */
  failures: number;
}

/** After a failed fetch, requests do not wait for another one for this long, doubling per failure. */
const FAILURE_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 60_000;

/** Parses a JWKS document: its `keys` that are objects with a `kty`; throws with a reason otherwise. */
export function parseJwks(text: string): JWK[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error('the JWKS is not JSON');
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new Error('the JWKS has no "keys" list');
  const out = keys.filter((k): k is JWK => k !== null && typeof k === 'object' && typeof (k as JWK).kty === 'string');
  if (out.length === 0) throw new Error('the JWKS has no usable key');
  return out;
}

export class JwksCache implements JwksSource {
  private readonly inline = new Map<string, JWK[] | undefined>();
  private readonly remote = new Map<string, RemoteSet>();

  constructor(
    private readonly fetchText: JwksFetch,
    private readonly log: Logger | undefined,
    private readonly now: () => number = () => performance.now(),
  ) {}

  async keys(rule: WaypointJwtRule, kid: string | undefined): Promise<JWK[] | undefined> {
    if (rule.jwks) return this.inlineKeys(rule.jwks);
    const uri = rule.jwksUri || `${rule.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    let set = this.remote.get(uri);
    if (set === undefined) this.remote.set(uri, (set = { keys: undefined, fetchedAt: -Infinity, pending: undefined, lastError: undefined, failures: 0 }));
    const age = this.now() - set.fetchedAt;
    const backingOff = set.failures > 0 && age < Math.min(MAX_BACKOFF_MS, FAILURE_BACKOFF_MS * 2 ** (set.failures - 1));
    // A key id no key of the set has (keys without a kid match any token) may mean the keys were rotated.
    const unknownKid = kid !== undefined && set.keys !== undefined && set.keys.every((k) => k.kid !== undefined && k.kid !== kid);
    if (!backingOff && (set.keys === undefined || (unknownKid && age >= UNKNOWN_KID_MS))) await this.refresh(uri, set, rule);
    else if (!backingOff && age >= CACHE_MS) void this.refresh(uri, set, rule);
    else if (set.pending !== undefined && set.keys === undefined) await set.pending;
    return set.keys;
  }

  status(): { uri: string; keys: number; lastError?: string }[] {
    return [...this.remote].map(([uri, s]) => ({ uri, keys: s.keys?.length ?? 0, ...(s.lastError ? { lastError: s.lastError } : {}) }));
  }

  private inlineKeys(text: string): JWK[] | undefined {
    if (!this.inline.has(text)) {
      let keys: JWK[] | undefined;
      try {
        keys = parseJwks(text);
      } catch (e) {
        this.log?.warn(`inline jwks of a RequestAuthentication is unusable: ${(e as Error).message}`);
      }
      this.inline.set(text, keys);
    }
    return this.inline.get(text);
  }

  private refresh(uri: string, set: RemoteSet, rule: WaypointJwtRule): Promise<void> {
    set.pending ??= this.fetchSet(uri, rule.jwksUri ? undefined : rule.issuer, rule.timeoutMs || DEFAULT_TIMEOUT_MS)
      .then(
        (keys) => {
          if (set.lastError !== undefined || set.keys === undefined) this.log?.info(`fetched JWKS ${uri}: ${keys.length} keys`);
          set.keys = keys;
          set.lastError = undefined;
          set.failures = 0;
        },
        (e: Error) => {
          set.lastError = e.message;
          set.failures++;
          this.log?.warn(`failed to fetch JWKS ${uri}: ${e.message}${set.keys ? '; keeping the last keys' : '; tokens of this issuer are refused until it succeeds'}`);
        },
      )
      .finally(() => {
        set.fetchedAt = this.now();
        set.pending = undefined;
      });
    return set.pending;
  }

  /** The set at `uri`; for a discovery document (issuer given) the set its `jwks_uri` names. */
  private async fetchSet(uri: string, issuer: string | undefined, timeoutMs: number): Promise<JWK[]> {
    if (issuer === undefined) return parseJwks(await this.fetchText(uri, timeoutMs));
    let doc: unknown;
    try {
      doc = JSON.parse(await this.fetchText(uri, timeoutMs));
    } catch (e) {
      throw new Error(`OIDC discovery at ${uri}: ${(e as Error).message}`);
    }
    const jwksUri = (doc as { jwks_uri?: unknown } | null)?.jwks_uri;
    if (typeof jwksUri !== 'string') throw new Error(`OIDC discovery at ${uri} has no jwks_uri`);
    return parseJwks(await this.fetchText(jwksUri, timeoutMs));
  }
}
