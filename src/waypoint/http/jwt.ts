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
  if (header.kid !== undefined && typeof header.kid !== 'string') return 'Jwt header [kid] field is not a string';
  const payloadText = decodeSegment(p);
  if (payloadText === undefined || p === '') return JWT_STATUS.payloadBase64;
  const payload = parseJsonObject(payloadText);
  if (payload === undefined) return JWT_STATUS.payloadJson;
  for (const claim of ['iss', 'sub', 'jti']) {
    if (payload[claim] !== undefined && typeof payload[claim] !== 'string') return `Jwt payload [${claim}] field is not a string`;
  }
  for (const claim of ['exp', 'nbf', 'iat']) {
    const v = payload[claim];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) return `Jwt payload [${claim}] field is not an integer`;
    if (v < 0) return `Jwt payload [${claim}] field is not a positive 64 bit integer`;
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

/** Where a provider found a token, so the filter can remove it when the rule does not forward it. */
interface FoundToken {
  token: string;
  /** The header it came in (lower-case), or the query parameter; neither for a cookie (Envoy keeps cookies). */
  header?: string;
  param?: string;
}

/** The outcome of authentication: refused with Envoy's reply, or passed with what to change in the request. */
export type JwtOutcome =
  | { ok: false; status: 401 | 403; body: string }
  | {
      ok: true;
      /** The verified payload authorization sees; undefined when no provider verified a token. */
      payload?: Record<string, unknown>;
      /** Headers to remove (tokens not forwarded, and every rule's output headers), then to set. */
      remove: string[];
      set: [string, string][];
      /** Query parameters carrying a token that is not forwarded (Envoy ≥ 1.31 removes them). */
      removeParams: string[];
    };

/** A provider's result for one request. */
type ProviderResult = { status: 'missing' } | { status: 'ok'; jwt: ParsedJwt; found: FoundToken[] } | { status: 'failed'; text: string; unknownIssuer: boolean };

/** One JWT rule, ready to extract and verify. */
class Provider {
  private readonly headers: { name: string; prefix: string }[];
  private readonly params: string[];
  private readonly cookies: string[];
  private readonly spaceDelimited: string[];
  /** The rule's output header names: removed from every request the filter checks, token or not (Envoy's sanitizing). */
  readonly outputHeaders: string[];

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
    this.outputHeaders = [...(rule.outputPayloadToHeader ? [rule.outputPayloadToHeader] : []), ...rule.outputClaimToHeaders.map((c) => c.header)].map((n) => n.toLowerCase());
  }

  /** Every token in this provider's locations (Envoy checks them all): headers, query parameters, cookies. */
  extract(req: JwtRequest): FoundToken[] {
    const out: FoundToken[] = [];
    for (const h of this.headers) {
      const v = req.header(h.name);
      if (v === undefined) continue;
      // Several fields of one name arrive joined with ','; each is a value of its own to Envoy.
      for (const value of h.prefix === '' && v.includes(',') ? v.split(',').map((x) => x.trim()) : [v]) {
        const token = tokenAfter(value, h.prefix);
        if (token !== undefined) out.push({ token, header: h.name });
      }
    }
    if (this.params.length > 0) {
      const q = req.path.indexOf('?');
      if (q >= 0) {
        const params = new URLSearchParams(req.path.slice(q + 1));
        for (const name of this.params) for (const v of params.getAll(name)) out.push({ token: v, param: name });
      }
    }
    if (this.cookies.length > 0) {
      const cookie = req.header('cookie');
      if (cookie !== undefined) {
        for (const part of cookie.split(';')) {
          const eq = part.indexOf('=');
          if (eq > 0 && this.cookies.includes(part.slice(0, eq).trim())) out.push({ token: part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1') });
        }
      }
    }
    return out;
  }

  async verify(req: JwtRequest, nowSeconds: number): Promise<ProviderResult> {
    const found = this.extract(req);
    if (found.length === 0) return { status: 'missing' };
    // Every token must verify; the last one found is checked first, as Envoy pops them.
    let first: ParsedJwt | undefined;
    for (let i = found.length - 1; i >= 0; i--) {
      const r = await this.verifyToken(found[i]!.token, nowSeconds);
      if (typeof r === 'string') return { status: 'failed', text: r, unknownIssuer: r === JWT_STATUS.unknownIssuer };
      first = r;
    }
    return { status: 'ok', jwt: first!, found };
  }

  private async verifyToken(token: string, nowSeconds: number): Promise<ParsedJwt | string> {
    const jwt = parseJwt(token);
    if (typeof jwt === 'string') return jwt;
    const { payload } = jwt;
    if (this.rule.issuer && payload.iss !== this.rule.issuer) return JWT_STATUS.unknownIssuer;
    const nbf = payload.nbf as number | undefined;
    const exp = payload.exp as number | undefined;
    if (nbf !== undefined && nowSeconds + CLOCK_SKEW_SECONDS < Math.trunc(nbf)) return JWT_STATUS.notYetValid;
    // exp 0: no expiry.
    if (exp !== undefined && exp !== 0 && nowSeconds > Math.trunc(exp) + CLOCK_SKEW_SECONDS) return JWT_STATUS.expired;
    if (this.rule.audiences.length > 0) {
      const aud = typeof payload.aud === 'string' ? [payload.aud] : ((payload.aud as string[] | undefined) ?? []);
      const allowed = new Set(this.rule.audiences.map(normalizeAudience));
      if (!aud.some((a) => allowed.has(normalizeAudience(a)))) return JWT_STATUS.audience;
    }
    const keys = await this.jwks.keys(this.rule, jwt.kid);
    if (keys === undefined) return JWT_STATUS.remoteFetch;
    // jwt_verify_lib: keys matching the token's kid and alg (a key without them matches); of those, the right type.
    const candidates = keys.filter((k) => (jwt.kid === undefined || k.kid === undefined || k.kid === jwt.kid) && (k.alg === undefined || k.alg === jwt.alg));
    if (candidates.length === 0) return JWT_STATUS.kidAlgUnmatch;
    for (const k of candidates) if (keyFitsAlg(k, jwt.alg) && (await signatureHolds(jwt, k))) return jwt;
    return JWT_STATUS.verification;
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

/** jwt_verify_lib compares audiences without a leading `http://` or `https://` and a trailing `/`. */
function normalizeAudience(a: string): string {
  return a.replace(/^https?:\/\//, '').replace(/\/$/, '');
}

/**
 * The token in a header value, as Envoy's extractor finds it: after the prefix (wherever it is), skipping characters
 * that cannot start a token, the run of token characters; the whole rest when none follows.
 */
function tokenAfter(value: string, prefix: string): string | undefined {
  const at = prefix === '' ? 0 : value.indexOf(prefix);
  if (at < 0) return undefined;
  const rest = value.slice(at + prefix.length);
  const m = /[A-Za-z0-9._~+/=-]+/.exec(rest);
  return m ? m[0] : rest;
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

/**
 * A claim as outputClaimToHeaders writes it: strings as they are, numbers and booleans as text, the rest as base64
 * JSON; nothing for an empty value or one a header cannot carry.
 */
function claimHeaderValue(v: unknown): string | undefined {
  let text: string;
  if (typeof v === 'string') text = v;
  // Envoy prints a non-integer number with six decimals.
  else if (typeof v === 'number') text = Number.isInteger(v) ? String(v) : v.toFixed(6);
  else if (typeof v === 'boolean') text = String(v);
  else if (v !== null && typeof v === 'object') text = Buffer.from(JSON.stringify(v)).toString('base64');
  else return undefined;
  if (text === '' || /[\r\n\0]/.test(text)) return undefined;
  // Header values go out as bytes: the claim's UTF-8, as Envoy sends it.
  return Buffer.from(text, 'utf8').toString('latin1');
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

  /**
   * Envoy's requirement `any(P1..PN, all(P1 or missing, …, PN or missing))`, providers in istiod's order (by issuer):
   * the first that verifies its tokens decides what changes in the request; with none, the last real error.
   */
  async authenticate(req: JwtRequest, nowSeconds = Math.floor(Date.now() / 1000)): Promise<JwtOutcome> {
    const results = await Promise.all(this.providers.map((p) => p.verify(req, nowSeconds)));
    // Every rule's output headers go, whatever the outcome: a client cannot pose as a verified claim.
    const remove = this.providers.flatMap((p) => p.outputHeaders);
    const verified = results.findIndex((r) => r.status === 'ok');
    if (verified < 0) {
      const failures = results.filter((r): r is Extract<ProviderResult, { status: 'failed' }> => r.status === 'failed');
      if (failures.length === 0) return { ok: true, remove, set: [], removeParams: [] };
      // AnyVerifier: the last error that is not an unknown issuer, else the unknown issuer.
      const f = failures.filter((x) => !x.unknownIssuer).at(-1) ?? failures[0]!;
      return { ok: false, status: f.text === JWT_STATUS.audience ? 403 : 401, body: f.text };
    }
    const p = this.providers[verified]!;
    const r = results[verified] as Extract<ProviderResult, { status: 'ok' }>;
    const set: [string, string][] = [];
    const removeParams: string[] = [];
    if (!p.rule.forwardOriginalToken) {
      for (const f of r.found) {
        if (f.header !== undefined) remove.push(f.header);
        if (f.param !== undefined) removeParams.push(f.param);
      }
    }
    if (p.rule.outputPayloadToHeader) set.push([p.rule.outputPayloadToHeader.toLowerCase(), r.jwt.payloadSegment]);
    for (const c of p.rule.outputClaimToHeaders) {
      const v = claimHeaderValue(claimAt(r.jwt.payload, c.claim));
      if (v !== undefined) set.push([c.header.toLowerCase(), v]);
    }
    return { ok: true, payload: p.normalized(r.jwt.payload), remove, set, removeParams };
  }
}

/** Envoy's `www-authenticate` for a refused request: the realm is the request's URL (its path cut to 256), plus the error. */
export function wwwAuthenticate(authority: string, path: string, body: string): string {
  const realm = `http://${authority}${path.slice(0, 256)}`;
  return `Bearer realm="${realm}"${body === JWT_STATUS.missing ? '' : ', error="invalid_token"'}`;
}
