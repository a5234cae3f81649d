// What the waypoint's authorization sees of a request, and the per-request view the compiled matchers read it
// through. The view derives values lazily (url path, lower-cased authority, parsed IPs) and caches them for the rest
// of one `authorize` call, so twenty policies that all look at the source IP parse it once.
import { parseIpv4, parseIpv6Into } from '../../common/ip.js';
import { urlPathEnd } from '../http/path.js';

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
    const v4 = parseIpv4(text);
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
      if (path === undefined) {
        this.urlPathValue = undefined;
      } else {
        const end = urlPathEnd(path);
        this.urlPathValue = end === path.length ? path : path.slice(0, end);
      }
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
