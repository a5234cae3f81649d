// What the waypoint's authorization sees of a request, and the per-request view the compiled matchers read it
// through. The view derives values lazily (url path, lower-cased authority, parsed IPs) and caches them for the rest
// of one `authorize` call, so twenty policies that all look at the source IP parse it once.

export type TrafficKind = 'http' | 'tcp';

export interface HttpRequestAttributes {
  method: string;
  /** The normalized :path, query and fragment included; matchers use the part before `?` or `#`. */
  path: string;
  /** :authority as received (port included if sent); '' when the request carried none. */
  host: string;
  /** Header by lower-case name; several values already joined with ','. */
  header(name: string): string | undefined;
}

export interface RequestAttributes {
  /** Direct peer IP (canonical text, IPv4 like 10.0.0.1). */
  sourceIp: string;
  /** Trusted client address: the rightmost X-Forwarded-For entry, else sourceIp (the caller computes it). */
  remoteIp: string;
  /** Peer identity without `spiffe://`, e.g. cluster.local/ns/foo/sa/bar; undefined when there is no mTLS identity. */
  sourcePrincipal?: string;
  destinationIp: string;
  destinationPort: number;
  /** connection.sni; empty or undefined at the waypoint. */
  sni?: string;
  /** Absent for TCP traffic. */
  http?: HttpRequestAttributes;
  /** The verified JWT payload; absent when the request carried no (valid) token. */
  jwt?: { payload: Record<string, unknown> };
}

/** An IP address parsed once per request into a number (IPv4) or reused 16-byte buffer (IPv6). */
export class ParsedIp {
  /** 0 = not parsed yet, 4 or 6 = family, -1 = not an IP. */
  family = 0;
  v4 = 0;
  readonly v6 = new Uint8Array(16);

  parse(text: string): this {
    if (this.family !== 0) return this;
    const v4 = parseIpv4(text, 0, text.length);
    if (v4 >= 0) {
      this.v4 = v4;
      this.family = 4;
    } else {
      this.family = parseIpv6Into(text, this.v6) ? 6 : -1;
    }
    return this;
  }
}

/** Request plus its lazily derived values. One instance is reused for every `authorize` call (they never nest). */
export class RequestView {
  req!: RequestAttributes;
  readonly source = new ParsedIp();
  readonly remote = new ParsedIp();
  readonly destination = new ParsedIp();
  private urlPathValue: string | undefined;
  private urlPathDone = false;
  private authorityValue: string | undefined;
  private authorityDone = false;

  reset(req: RequestAttributes): void {
    this.req = req;
    this.source.family = 0;
    this.remote.family = 0;
    this.destination.family = 0;
    this.urlPathDone = false;
    this.authorityDone = false;
  }

  /** Envoy's url_path: :path without query and fragment; undefined for TCP. */
  urlPath(): string | undefined {
    if (!this.urlPathDone) {
      const path = this.req.http?.path;
      this.urlPathValue = path === undefined ? undefined : stripQueryAndFragment(path);
      this.urlPathDone = true;
    }
    return this.urlPathValue;
  }

  /** :authority lower-cased (ASCII only, as Envoy's ignore_case); undefined when absent. */
  authorityLowerCase(): string | undefined {
    if (!this.authorityDone) {
      const host = this.req.http?.host;
      this.authorityValue = host === undefined || host === '' ? undefined : asciiLowerCase(host);
      this.authorityDone = true;
    }
    return this.authorityValue;
  }
}

function stripQueryAndFragment(path: string): string {
  let end = path.length;
  for (let i = 0; i < end; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x3f /* ? */ || c === 0x23 /* # */) end = i;
  }
  return end === path.length ? path : path.slice(0, end);
}

/** ASCII-only lower-casing that returns the input itself when it has no upper-case letter (the usual authority). */
export function asciiLowerCase(s: string): string {
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) break;
  }
  if (i === s.length) return s;
  let out = s.slice(0, i);
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 0x41 && c <= 0x5a ? String.fromCharCode(c + 0x20) : s[i];
  }
  return out;
}

/** Dotted-quad IPv4 in s[start, end) without leading zeros (Go's netip rules) as an unsigned 32-bit number, or -1. */
function parseIpv4(s: string, start: number, end: number): number {
  let result = 0;
  let parts = 0;
  let value = 0;
  let digits = 0;
  for (let i = start; i <= end; i++) {
    const c = i < end ? s.charCodeAt(i) : 0x2e; // the end acts as a final '.'
    if (c === 0x2e) {
      if (digits === 0 || parts === 4) return -1;
      result = result * 256 + value;
      parts++;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) return -1;
      value = value * 10 + (c - 0x30);
      if (value > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  return parts === 4 ? result : -1;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** IPv6 text (optionally with an embedded IPv4 tail or a %zone, which is ignored) into `out`; false if invalid. */
function parseIpv6Into(s: string, out: Uint8Array): boolean {
  let end = s.indexOf('%');
  if (end < 0) end = s.length;
  let groups = 0;
  let gapAt = -1;
  let i = 0;
  if (end >= 2 && s.charCodeAt(0) === 0x3a && s.charCodeAt(1) === 0x3a) {
    gapAt = 0;
    i = 2;
  }
  while (i < end) {
    if (groups === 8) return false;
    const start = i;
    let value = 0;
    while (i < end && i - start < 5) {
      const h = hexValue(s.charCodeAt(i));
      if (h < 0) break;
      value = value * 16 + h;
      i++;
    }
    const digits = i - start;
    if (i < end && s.charCodeAt(i) === 0x2e) {
      // An embedded IPv4 tail takes the last two groups.
      if (groups > 6) return false;
      const v4 = parseIpv4(s, start, end);
      if (v4 < 0) return false;
      out[groups * 2] = v4 >>> 24;
      out[groups * 2 + 1] = (v4 >>> 16) & 0xff;
      out[groups * 2 + 2] = (v4 >>> 8) & 0xff;
      out[groups * 2 + 3] = v4 & 0xff;
      groups += 2;
      i = end;
      break;
    }
    if (digits === 0 || digits > 4) return false;
    out[groups * 2] = value >> 8;
    out[groups * 2 + 1] = value & 0xff;
    groups++;
    if (i === end) break;
    if (s.charCodeAt(i) !== 0x3a) return false;
    i++;
    if (i < end && s.charCodeAt(i) === 0x3a) {
      if (gapAt >= 0) return false;
      gapAt = groups;
      i++;
    } else if (i === end) {
      return false; // a single trailing ':'
    }
  }
  if (gapAt < 0) return groups === 8;
  if (groups === 8) return false; // '::' stands for at least one zero group
  // Move the groups after '::' to the end and zero the gap.
  const tailBytes = (groups - gapAt) * 2;
  for (let k = 0; k < tailBytes; k++) out[15 - k] = out[gapAt * 2 + tailBytes - 1 - k]!;
  for (let k = gapAt * 2; k < 16 - tailBytes; k++) out[k] = 0;
  return true;
}
