// The Envoy RBAC matchers Istio generates for AuthorizationPolicy values (pilot/pkg/security/authz/model/generator.go
// and matcher/*.go), compiled once into sets, prefix/suffix lists, precompiled regexes and CIDR numbers. Each value
// form is translated exactly as istiod translates it, so `*` means "non-empty" for string matchers but "present" for
// header matchers, and the identity regexes keep Envoy's full-match semantics.
import { parseCidr } from '../../common/ip.js';
import type { ParsedIp, RequestView } from './request.js';

/** One AuthorizationPolicy field (or `when` key) with its values ORed, evaluated against a request. */
export interface Predicate {
  matches(view: RequestView): boolean;
}

/** RE2's `.`, which (unlike a JS `.` without the s flag) matches every character except a newline. */
const ANY = '[^\\n]';

/** Go's regexp.QuoteMeta: the value is literal text inside the generated regex. */
function quoteRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * An OR of Envoy StringMatchers. `nonEmpty` is Istio's `*` for string matchers (regex `.+`), `present` its `*` for
 * header matchers (any value, even empty).
 */
export class StringSet {
  private readonly exactSet = new Set<string>();
  private readonly exact: string[] = [];
  private readonly prefixes: string[] = [];
  private readonly suffixes: string[] = [];
  private readonly regexes: RegExp[] = [];
  private nonEmpty = false;
  private present = false;

  addExact(v: string): void {
    this.exactSet.add(v);
    this.exact.push(v);
  }
  addPrefix(v: string): void {
    this.prefixes.push(v);
  }
  addSuffix(v: string): void {
    this.suffixes.push(v);
  }
  /** A full-match regex (Envoy safe_regex). */
  addRegex(source: string): void {
    this.regexes.push(new RegExp(`^(?:${source})$`));
  }
  addNonEmpty(): void {
    this.nonEmpty = true;
  }
  addPresent(): void {
    this.present = true;
  }

  test(s: string): boolean {
    if (this.present) return true;
    if (this.nonEmpty && s.length > 0 && s.indexOf('\n') < 0) return true;
    if (this.exactSet.has(s)) return true;
    for (let i = 0; i < this.prefixes.length; i++) if (s.startsWith(this.prefixes[i]!)) return true;
    for (let i = 0; i < this.suffixes.length; i++) if (s.endsWith(this.suffixes[i]!)) return true;
    for (let i = 0; i < this.regexes.length; i++) if (this.regexes[i]!.test(s)) return true;
    return false;
  }

  /** `test(s.slice(start, end))` without the slice, for the words of a space-delimited claim. */
  testRange(s: string, start: number, end: number): boolean {
    const len = end - start;
    if (this.present) return true;
    if (this.nonEmpty && len > 0) {
      const nl = s.indexOf('\n', start);
      if (nl < 0 || nl >= end) return true;
    }
    for (let i = 0; i < this.exact.length; i++) {
      const v = this.exact[i]!;
      if (v.length === len && s.startsWith(v, start)) return true;
    }
    for (let i = 0; i < this.prefixes.length; i++) {
      const v = this.prefixes[i]!;
      if (v.length <= len && s.startsWith(v, start)) return true;
    }
    for (let i = 0; i < this.suffixes.length; i++) {
      const v = this.suffixes[i]!;
      if (v.length <= len && s.startsWith(v, end - v.length)) return true;
    }
    // Claim values never compile to regexes; a slice keeps this correct should that change.
    return this.regexes.length > 0 && this.test(s.slice(start, end));
  }
}

// ---- value forms ------------------------------------------------------------------------------------------------

/** matcher.StringMatcher: `*` non-empty, `*x` suffix, `x*` prefix, else exact. */
export function addStringForm(set: StringSet, v: string): void {
  if (v === '*') set.addNonEmpty();
  else if (v.startsWith('*')) set.addSuffix(v.slice(1));
  else if (v.endsWith('*')) set.addPrefix(v.slice(0, -1));
  else set.addExact(v);
}

/** matcher.HeaderMatcher / HostMatcher: like addStringForm, but `*` is present_match. */
export function addHeaderForm(set: StringSet, v: string): void {
  if (v === '*') set.addPresent();
  else addStringForm(set, v);
}

// The identity forms below are matched against the peer principal WITHOUT `spiffe://` (how the request carries it),
// so each regex Istio writes over `spiffe://<principal>` is rewritten to the equivalent one over `<principal>`.

/** principals / source.principal: Istio matches `spiffe://` + value, `*` as regex `.+`, `*x` as `spiffe://.*x`. */
export function addPrincipalForm(set: StringSet, v: string): void {
  if (v === '*') set.addRegex(`${ANY}*`);
  else if (v.startsWith('*')) set.addRegex(`${ANY}*${quoteRegex(v.slice(1))}`);
  else if (v.endsWith('*')) set.addPrefix(v.slice(0, -1));
  else set.addExact(v);
}

/**
 * namespaces / source.namespace: Istio's regex `.*\/ns/<ns>/.*` over the URI, every `*` in the value becoming `.*`.
 * Over the principal the `/ns/` may also start it (the second slash of `spiffe://` precedes it).
 */
export function addNamespaceForm(set: StringSet, v: string): void {
  const ns = v.split('*').map(quoteRegex).join(`${ANY}*`);
  set.addRegex(`(?:${ANY}*/)?ns/${ns}/${ANY}*`);
}

/** serviceAccounts / source.serviceAccount: `<ns>/<sa>` or `<sa>` (policy namespace), regex from serviceAccountRegex. */
export function addServiceAccountForm(set: StringSet, v: string, policyNamespace: string): void {
  const slash = v.indexOf('/');
  const ns = slash < 0 ? policyNamespace : v.slice(0, slash);
  const sa = slash < 0 ? v : v.slice(slash + 1);
  set.addRegex(`${ANY}+/ns/${quoteRegex(ns)}/(?:${ANY}+/|)sa/${quoteRegex(sa)}(?:/${ANY}+)?`);
}

/** trustDomains / source.trustDomain: `*` any identity, exact as prefix `<td>/`, one `*` inside as `[^/]*`. */
export function addTrustDomainForm(set: StringSet, v: string): void {
  if (v === '*') {
    set.addPrefix('');
    return;
  }
  const star = v.indexOf('*');
  if (star < 0) {
    set.addPrefix(`${v}/`);
    return;
  }
  // Only the first `*` is a wildcard (strings.SplitN(value, "*", 2)); later ones are literal.
  set.addRegex(`${quoteRegex(v.slice(0, star))}[^/]*${quoteRegex(v.slice(star + 1))}/${ANY}*`);
}

// ---- path templates ---------------------------------------------------------------------------------------------

// Envoy's uri_template globs: `*` one or more pchars of one segment, `**` any pchars and slashes.
const PCHAR = "a-zA-Z0-9\\-._~%!$&'()+,;:@=";
const PATH_GLOB = `[${PCHAR}]+`;
const TEXT_GLOB = `[${PCHAR}/]*`;
const VALID_LITERAL = /^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/;

export function containsPathTemplate(v: string): boolean {
  return v.includes('{*}') || v.includes('{**}');
}

/**
 * Regex source for a `paths` value with `{*}`/`{**}` (Istio's CheckValidPathTemplate + Envoy's uri_template parse),
 * or undefined when Envoy would reject it: `{**}` not last, other braces, empty or non-pchar segments.
 */
export function pathTemplateRegex(v: string): string | undefined {
  if (!v.startsWith('/')) return undefined;
  let body = v.slice(1);
  const trailingSlash = body.endsWith('/');
  if (trailingSlash) body = body.slice(0, -1);
  const parts: string[] = [];
  let sawTextGlob = false;
  for (const segment of body.split('/')) {
    if (segment === '{*}' || segment === '{**}') {
      if (sawTextGlob) return undefined;
      sawTextGlob = segment === '{**}';
      parts.push(sawTextGlob ? TEXT_GLOB : PATH_GLOB);
    } else if (VALID_LITERAL.test(segment)) {
      parts.push(quoteRegex(segment));
    } else {
      return undefined;
    }
  }
  return `/${parts.join('/')}${trailingSlash ? '/' : ''}`;
}

// ---- CIDRs and ports --------------------------------------------------------------------------------------------

/** An OR of CIDR ranges; IPv4 as masked 32-bit numbers, IPv6 as bytes. */
export class CidrSet {
  private readonly v4: number[] = []; // pairs: network, mask
  private readonly v6: { bytes: Uint8Array; bits: number }[] = [];

  /** Istio's AddrStrToCidrRange: a bare IP or a CIDR (host bits allowed, Envoy masks them); false if invalid. */
  add(v: string): boolean {
    // netip.ParsePrefix refuses zones; a bare IP with a zone is accepted and the zone dropped.
    if (v.includes('/') && v.includes('%')) return false;
    const cidr = parseCidr(v);
    if (cidr === undefined) return false;
    if (cidr.address.length === 4) {
      const mask = cidr.length === 0 ? 0 : (0xffffffff << (32 - cidr.length)) >>> 0;
      const a = cidr.address;
      const ip = ((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) >>> 0;
      this.v4.push((ip & mask) >>> 0, mask);
    } else {
      this.v6.push({ bytes: cidr.address, bits: cidr.length });
    }
    return true;
  }

  contains(ip: ParsedIp): boolean {
    if (ip.family === 4) {
      for (let i = 0; i < this.v4.length; i += 2) if (((ip.v4 & this.v4[i + 1]!) >>> 0) === this.v4[i]) return true;
      return false;
    }
    if (ip.family === 6) {
      for (let i = 0; i < this.v6.length; i++) if (prefixEquals(this.v6[i]!.bytes, ip.v6, this.v6[i]!.bits)) return true;
    }
    return false;
  }
}

function prefixEquals(net: Uint8Array, ip: Uint8Array, bits: number): boolean {
  let i = 0;
  for (; bits >= 8; bits -= 8, i++) if (net[i] !== ip[i]) return false;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return (net[i]! & mask) === (ip[i]! & mask);
}

/** Istio's convertToPort: decimal digits (leading zeros allowed), 0–65535; undefined otherwise. */
export function parsePort(v: string): number | undefined {
  if (!/^[0-9]+$/.test(v)) return undefined;
  const n = Number(v);
  return n <= 65535 ? n : undefined;
}

// ---- predicates -------------------------------------------------------------------------------------------------

/** Matches the peer principal; no mTLS identity means Envoy has no peer principal, so nothing matches. */
export class PrincipalPredicate implements Predicate {
  constructor(private readonly set: StringSet) {}
  matches(view: RequestView): boolean {
    const p = view.req.sourcePrincipal;
    return p !== undefined && this.set.test(p);
  }
}

export type IpAttribute = 'source' | 'remote' | 'destination';

export class IpPredicate implements Predicate {
  constructor(
    private readonly attribute: IpAttribute,
    private readonly cidrs: CidrSet,
  ) {}
  matches(view: RequestView): boolean {
    const req = view.req;
    switch (this.attribute) {
      case 'source':
        return this.cidrs.contains(view.source.parse(req.sourceIp));
      case 'remote':
        return this.cidrs.contains(view.remote.parse(req.remoteIp));
      case 'destination':
        return this.cidrs.contains(view.destination.parse(req.destinationIp));
    }
  }
}

export class PortPredicate implements Predicate {
  constructor(private readonly ports: Set<number>) {}
  matches(view: RequestView): boolean {
    return this.ports.has(view.req.destinationPort);
  }
}

/** requested_server_name: Envoy compares the empty string when the connection had no SNI. */
export class SniPredicate implements Predicate {
  constructor(private readonly set: StringSet) {}
  matches(view: RequestView): boolean {
    return this.set.test(view.req.sni ?? '');
  }
}

/** `hosts`: header `:authority` with ignore_case; the set holds lower-cased values. */
export class AuthorityPredicate implements Predicate {
  constructor(private readonly set: StringSet) {}
  matches(view: RequestView): boolean {
    const host = view.authorityLowerCase();
    return host !== undefined && this.set.test(host);
  }
}

export class MethodPredicate implements Predicate {
  constructor(private readonly set: StringSet) {}
  matches(view: RequestView): boolean {
    const method = view.req.http?.method;
    return method !== undefined && this.set.test(method);
  }
}

/** `paths`: url_path (query and fragment stripped), case-sensitive; templates are regexes in the same set. */
export class UrlPathPredicate implements Predicate {
  constructor(private readonly set: StringSet) {}
  matches(view: RequestView): boolean {
    const path = view.urlPath();
    return path !== undefined && this.set.test(path);
  }
}

/** `request.headers[<name>]`: Envoy header matcher; pseudo-headers come from the request line. */
export class HeaderPredicate implements Predicate {
  constructor(
    private readonly name: string, // lower-case, as Envoy's LowerCaseString
    private readonly set: StringSet,
  ) {}
  matches(view: RequestView): boolean {
    const http = view.req.http;
    if (http === undefined) return false;
    let value: string | undefined;
    switch (this.name) {
      case ':method':
        value = http.method;
        break;
      case ':path':
        value = http.path;
        break;
      case ':authority':
        value = http.host === '' ? undefined : http.host;
        break;
      default:
        value = http.header(this.name);
    }
    return value !== undefined && this.set.test(value);
  }
}

function stringClaim(payload: Record<string, unknown>, claim: string): string | undefined {
  if (!Object.hasOwn(payload, claim)) return undefined;
  const v = payload[claim];
  return typeof v === 'string' ? v : undefined;
}

/** requestPrincipals / request.auth.principal: `iss/sub` split at the last `/`, both must match (string claims only). */
export class RequestPrincipalPredicate implements Predicate {
  constructor(private readonly alternatives: readonly { iss: StringSet; sub: StringSet }[]) {}
  matches(view: RequestView): boolean {
    const payload = view.req.jwt?.payload;
    if (payload === undefined) return false;
    const iss = stringClaim(payload, 'iss');
    const sub = stringClaim(payload, 'sub');
    if (iss === undefined || sub === undefined) return false;
    for (let i = 0; i < this.alternatives.length; i++) {
      const a = this.alternatives[i]!;
      if (a.iss.test(iss) && a.sub.test(sub)) return true;
    }
    return false;
  }
}

/** Claims Istio always asks jwt_authn to split on spaces into lists (policy_applier.go buildSpaceDelimitedClaims). */
const SPACE_DELIMITED_CLAIMS = new Set(['scope', 'permission']);

/**
 * request.auth.claims[a][b]…, audiences (`aud`), presenter (`azp`): the value at the path matches when it is a string
 * matching, or a list with a matching string element. Top-level `scope`/`permission` strings are lists of their
 * space-separated words, as jwt_authn's normalize_payload_in_metadata puts them into the metadata.
 */
export class ClaimPredicate implements Predicate {
  private readonly spaceDelimited: boolean;
  constructor(
    private readonly path: readonly string[],
    private readonly set: StringSet,
  ) {
    this.spaceDelimited = path.length === 1 && SPACE_DELIMITED_CLAIMS.has(path[0]!);
  }

  matches(view: RequestView): boolean {
    let v: unknown = view.req.jwt?.payload;
    if (v === undefined) return false;
    for (let i = 0; i < this.path.length; i++) {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, this.path[i]!)) return false;
      v = (v as Record<string, unknown>)[this.path[i]!];
    }
    if (typeof v === 'string') return this.spaceDelimited ? this.matchesWords(v) : this.set.test(v);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const e: unknown = v[i];
        if (typeof e === 'string' && this.set.test(e)) return true;
      }
    }
    return false;
  }

  /** Envoy splits with absl::SkipEmpty and leaves a claim with no words as the original string. */
  private matchesWords(s: string): boolean {
    let sawWord = false;
    let start = 0;
    while (start <= s.length) {
      let end = s.indexOf(' ', start);
      if (end < 0) end = s.length;
      if (end > start) {
        sawWord = true;
        if (this.set.testRange(s, start, end)) return true;
      }
      start = end + 1;
    }
    return !sawWord && this.set.test(s);
  }
}
