// RequestAuthentication at the waypoint: Envoy's jwt_authn filter as istiod configures it (policy_applier.go). One
// provider per JWT rule; a request passes when one provider verifies its token or when every provider either verifies
// or finds no token (so a request without a token passes, and authorization decides); a token that is present and
// fails is refused with jwt_verify_lib's status text — 401, or 403 for audiences. Checks run in jwt_verify_lib's
// order: the token's form, issuer, time (60 s of clock skew), audiences, then the signature against the provider's
// JWKS (inline, or fetched: ./jwks.ts). Parsing is hand-written so that every malformed token gets the library's exact
// text; signatures are checked with `jose`.
import { compactVerify, importJWK, type JWK } from 'jose';

/** What jose's importJWK gives for a public key. */
type VerifyKey = Awaited<ReturnType<typeof importJWK>>;
import type { WaypointJwtRule } from '../../xds/types.js';
import type { JwksSource } from './jwks.js';

/** jwt_verify_lib's status texts that Envoy puts into the 401 body. */
export const JWT_STATUS = {
  missing: 'Jwt is missing',
  expired: 'Jwt is expired',
  notYetValid: 'Jwt not yet valid',
  unknownIssuer: 'Jwt issuer is not configured',
  audience: 'Audiences in Jwt are not allowed',
  verification: 'Jwt verification fails',
  kidAlgUnmatch: "Jwks doesn't have key to match kid or alg from Jwt",
  badForm: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  headerBase64: 'Jwt header is an invalid Base64url encoded',
  headerJson: 'Jwt header is an invalid JSON',
  payloadBase64: 'Jwt payload is an invalid Base64url encoded',
  payloadJson: 'Jwt payload is an invalid JSON',
  signatureBase64: 'Jwt signature is an invalid Base64url encoded',
  algMissing: 'Jwt header [alg] field is required and must be a string',
  algUnsupported: 'Jwt header [alg] is not supported',
  remoteFetch: 'Jwks remote fetch is failed',
} as const;

/** Envoy's clock skew for exp and nbf (istiod leaves the default). */
const CLOCK_SKEW_SECONDS = 60;

const SUPPORTED_ALGS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']);

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** A token split and decoded, not yet verified. */
export interface ParsedJwt {
  token: string;
  alg: string;
  kid: string | undefined;
  payload: Record<string, unknown>;
  /** The payload segment as sent (what outputPayloadToHeader forwards). */
  payloadSegment: string;
}

function decodeSegment(segment: string): string | undefined {
  if (!BASE64URL.test(segment)) return undefined;
  return Buffer.from(segment, 'base64url').toString('utf8');
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** jwt_verify_lib's Jwt::parseFromString: the form, the three segments, `alg` and the registered claims' types. */
export function parseJwt(token: string): ParsedJwt | string {
  const parts = token.split('.');
  if (parts.length !== 3) return JWT_STATUS.badForm;
  const [h, p, s] = parts as [string, string, string];
  const headerText = decodeSegment(h);
  if (headerText === undefined || h === '') return JWT_STATUS.headerBase64;
  const header = parseJsonObject(headerText);
  if (header === undefined) return JWT_STATUS.headerJson;
  if (typeof header.alg !== 'string') return JWT_STATUS.algMissing;
  if (!SUPPORTED_ALGS.has(header.alg)) return JWT_STATUS.algUnsupported;
  const payloadText = decodeSegment(p);
  if (payloadText === undefined || p === '') return JWT_STATUS.payloadBase64;
  const payload = parseJsonObject(payloadText);
  if (payload === undefined) return JWT_STATUS.payloadJson;
  for (const claim of ['iss', 'sub', 'jti']) {
    if (payload[claim] !== undefined && typeof payload[claim] !== 'string') return `Jwt payload [${claim}] field is not a string`;
  }
  for (const claim of ['exp', 'nbf', 'iat']) {
    if (payload[claim] !== undefined && !Number.isInteger(payload[claim])) return `Jwt payload [${claim}] field is not an integer`;
  }
  const aud = payload.aud;
  if (aud !== undefined && typeof aud !== 'string' && !(Array.isArray(aud) && aud.every((a) => typeof a === 'string'))) {
    return 'Jwt payload [aud] field is not a string or string list';
  }
  if (!BASE64URL.test(s) || s === '') return JWT_STATUS.signatureBase64;
  return { token, alg: header.alg, kid: typeof header.kid === 'string' ? header.kid : undefined, payload, payloadSegment: p };
}

/** What a request offers for authentication. */
export interface JwtRequest {
  header(name: string): string | undefined;
  /** The request path with its query string. */
  readonly path: string;
}

/** Where a provider found its token, so the filter can remove it when the rule does not forward it. */
interface FoundToken {
  token: string;
  /** The header it came in (lower-case); undefined for a query parameter or cookie. */
  header?: string;
}

/** The outcome of authentication: refused with Envoy's reply, or passed with what to change in the request. */
export type JwtOutcome =
  | { ok: false; status: 401 | 403; body: string }
  | {
      ok: true;
      /** The verified payload authorization sees; undefined when no provider verified a token. */
      payload?: Record<string, unknown>;
      /** Headers to remove (tokens not forwarded, headers overwritten by outputs), then to set. */
      remove: string[];
      set: [string, string][];
    };

/** A provider's result for one request. */
type ProviderResult = { status: 'missing' } | { status: 'ok'; jwt: ParsedJwt; found: FoundToken } | { status: 'failed'; text: string; unknownIssuer: boolean };

/** One JWT rule, ready to extract and verify. */
class Provider {
  private readonly headers: { name: string; prefix: string }[];
  private readonly params: string[];
  private readonly cookies: string[];
  private readonly spaceDelimited: string[];

  constructor(
    readonly rule: WaypointJwtRule,
    private readonly jwks: JwksSource,
  ) {
    const custom = rule.fromHeaders.length + rule.fromParams.length + rule.fromCookies.length > 0;
    // Envoy's default locations when the rule names none.
    this.headers = custom ? rule.fromHeaders.map((h) => ({ name: h.name.toLowerCase(), prefix: h.prefix })) : [{ name: 'authorization', prefix: 'Bearer ' }];
    this.params = custom ? rule.fromParams : ['access_token'];
    this.cookies = rule.fromCookies;
    this.spaceDelimited = rule.spaceDelimitedClaims.filter((c) => c !== 'scope' && c !== 'permission');
  }

  /** The first token in this provider's locations: headers, then query parameters, then cookies. */
  extract(req: JwtRequest): FoundToken | undefined {
    for (const h of this.headers) {
      const v = req.header(h.name);
      if (v === undefined) continue;
      const token = tokenAfter(v, h.prefix);
      if (token !== undefined) return { token, header: h.name };
    }
    if (this.params.length > 0) {
      const q = req.path.indexOf('?');
      if (q >= 0) {
        const params = new URLSearchParams(req.path.slice(q + 1));
        for (const name of this.params) {
          const v = params.get(name);
          if (v) return { token: v };
        }
      }
    }
    if (this.cookies.length > 0) {
      const cookie = req.header('cookie');
      if (cookie !== undefined) {
        for (const part of cookie.split(';')) {
          const eq = part.indexOf('=');
          if (eq > 0 && this.cookies.includes(part.slice(0, eq).trim())) {
            const v = part.slice(eq + 1).trim();
            if (v) return { token: v };
          }
        }
      }
    }
    return undefined;
  }

  async verify(req: JwtRequest, nowSeconds: number): Promise<ProviderResult> {
    const found = this.extract(req);
    if (found === undefined) return { status: 'missing' };
    const jwt = parseJwt(found.token);
    if (typeof jwt === 'string') return { status: 'failed', text: jwt, unknownIssuer: false };
    const { payload } = jwt;
    if (this.rule.issuer && payload.iss !== this.rule.issuer) return { status: 'failed', text: JWT_STATUS.unknownIssuer, unknownIssuer: true };
    if (typeof payload.nbf === 'number' && nowSeconds + CLOCK_SKEW_SECONDS < payload.nbf) return { status: 'failed', text: JWT_STATUS.notYetValid, unknownIssuer: false };
    if (typeof payload.exp === 'number' && nowSeconds > payload.exp + CLOCK_SKEW_SECONDS) return { status: 'failed', text: JWT_STATUS.expired, unknownIssuer: false };
    if (this.rule.audiences.length > 0) {
      const aud = typeof payload.aud === 'string' ? [payload.aud] : ((payload.aud as string[] | undefined) ?? []);
      if (!aud.some((a) => this.rule.audiences.includes(a))) return { status: 'failed', text: JWT_STATUS.audience, unknownIssuer: false };
    }
    const keys = await this.jwks.keys(this.rule, jwt.kid);
    if (keys === undefined) return { status: 'failed', text: JWT_STATUS.remoteFetch, unknownIssuer: false };
    const candidates = keys.filter((k) => (jwt.kid === undefined || k.kid === undefined || k.kid === jwt.kid) && (k.alg === undefined || k.alg === jwt.alg) && keyFitsAlg(k, jwt.alg));
    if (candidates.length === 0) return { status: 'failed', text: JWT_STATUS.kidAlgUnmatch, unknownIssuer: false };
    for (const k of candidates) if (await signatureHolds(jwt, k)) return { status: 'ok', jwt, found };
    return { status: 'failed', text: JWT_STATUS.verification, unknownIssuer: false };
  }

  /** The payload as authorization sees it: the rule's extra space-delimited claims split into lists. */
  normalized(payload: Record<string, unknown>): Record<string, unknown> {
    if (this.spaceDelimited.length === 0) return payload;
    const out = { ...payload };
    for (const c of this.spaceDelimited) {
      const v = out[c];
      if (typeof v === 'string' && v.includes(' ')) out[c] = v.split(' ').filter((w) => w !== '');
    }
    return out;
  }
}

/** The token after a header's prefix, as Envoy's extractor takes it: the run of token characters that follows. */
function tokenAfter(value: string, prefix: string): string | undefined {
  if (!value.startsWith(prefix)) return undefined;
  const m = /^[A-Za-z0-9._~+/=-]+/.exec(value.slice(prefix.length));
  return m ? m[0] : undefined;
}

/** Whether a JWK's type can verify `alg`. */
function keyFitsAlg(k: JWK, alg: string): boolean {
  if (alg.startsWith('RS') || alg.startsWith('PS')) return k.kty === 'RSA';
  if (alg.startsWith('ES')) return k.kty === 'EC';
  return k.kty === 'OKP';
}

const importedKeys = new WeakMap<JWK, Map<string, Promise<VerifyKey | undefined>>>();

async function signatureHolds(jwt: ParsedJwt, jwk: JWK): Promise<boolean> {
  let byAlg = importedKeys.get(jwk);
  if (byAlg === undefined) importedKeys.set(jwk, (byAlg = new Map()));
  let key = byAlg.get(jwt.alg);
  if (key === undefined) {
    key = importJWK(jwk, jwt.alg).then(
      (k) => k,
      () => undefined,
    );
    byAlg.set(jwt.alg, key);
  }
  const k = await key;
  if (k === undefined) return false;
  try {
    await compactVerify(jwt.token, k, { algorithms: [jwt.alg] });
    return true;
  } catch {
    return false;
  }
}

/** A claim as outputClaimToHeaders writes it: strings as they are, numbers and booleans as text, the rest as base64 JSON. */
function claimHeaderValue(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v !== null && typeof v === 'object') return Buffer.from(JSON.stringify(v)).toString('base64');
  return undefined;
}

function claimAt(payload: Record<string, unknown>, path: string): unknown {
  let v: unknown = payload;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** The JWT rules that apply to one Service (or to the waypoint), compiled once per configuration. */
export class JwtAuthenticator {
  private readonly providers: Provider[];

  constructor(rules: readonly WaypointJwtRule[], jwks: JwksSource) {
    this.providers = rules.map((r) => new Provider(r, jwks));
  }

  get empty(): boolean {
    return this.providers.length === 0;
  }

  /** Envoy's requirement `any(P1..PN, all(P1 or missing, …, PN or missing))`, with the reply of the first real error. */
  async authenticate(req: JwtRequest, nowSeconds = Math.floor(Date.now() / 1000)): Promise<JwtOutcome> {
    const results = await Promise.all(this.providers.map((p) => p.verify(req, nowSeconds)));
    const verified = results.flatMap((r, i) => (r.status === 'ok' ? [{ r, p: this.providers[i]! }] : []));
    const failures = results.filter((r): r is Extract<ProviderResult, { status: 'failed' }> => r.status === 'failed');
    if (verified.length === 0 && failures.length > 0) {
      // AnyVerifier: the first error that is not an unknown issuer, else the unknown issuer.
      const f = failures.find((x) => !x.unknownIssuer) ?? failures[0]!;
      return { ok: false, status: f.text === JWT_STATUS.audience ? 403 : 401, body: f.text };
    }
    // A token no provider verified but some provider found for another issuer is tolerated only when another
    // provider verified it; otherwise every present token must verify (the `all` branch).
    if (verified.length === 0) return { ok: true, remove: [], set: [] };
    const remove: string[] = [];
    const set: [string, string][] = [];
    for (const { r, p } of verified) {
      if (r.status !== 'ok') continue;
      if (!p.rule.forwardOriginalToken && r.found.header !== undefined) remove.push(r.found.header);
      if (p.rule.outputPayloadToHeader) {
        const name = p.rule.outputPayloadToHeader.toLowerCase();
        remove.push(name);
        set.push([name, r.jwt.payloadSegment]);
      }
      for (const c of p.rule.outputClaimToHeaders) {
        const name = c.header.toLowerCase();
        remove.push(name);
        const v = claimHeaderValue(claimAt(r.jwt.payload, c.claim));
        if (v !== undefined) set.push([name, v]);
      }
    }
    const first = verified[0]!;
    return { ok: true, payload: first.p.normalized((first.r as Extract<ProviderResult, { status: 'ok' }>).jwt.payload), remove, set };
  }
}

/** Envoy's `www-authenticate` for a refused request: the realm is the request's URL (cut to 256), plus the error. */
export function wwwAuthenticate(authority: string, path: string, body: string): string {
  const realm = `http://${authority}${path}`.slice(0, 256);
  return `Bearer realm="${realm}"${body === JWT_STATUS.missing ? '' : ', error="invalid_token"'}`;
}
