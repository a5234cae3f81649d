// HBONE CONNECT request headers: `:authority`, `forwarded`, `baggage` and `traceparent`, as ztunnel writes and
// reads them. Parsers never throw: a peer's malformed header must not fail the tunnel, it just yields nothing.
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

/** `ip:port`, with IPv6 addresses bracketed (`[fd00::2]:8080`), like Rust's SocketAddr display. */
export function formatAuthority(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

// RFC 1123 host names; the double-HBONE form uses `svc-hostname:port`.
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function parsePort(s: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(s)) return undefined;
  const port = Number(s);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** Parses an HBONE `:authority` (`ip:port`, `[ipv6]:port` or `hostname:port`); undefined when invalid. */
export function parseAuthority(authority: string | undefined): HostPort | undefined {
  if (!authority) return undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0 || authority[close + 1] !== ':') return undefined;
    const host = authority.slice(1, close);
    const port = parsePort(authority.slice(close + 2));
    return isIP(host) === 6 && port !== undefined ? { host, port } : undefined;
  }
  const colon = authority.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const host = authority.slice(0, colon);
  const port = parsePort(authority.slice(colon + 1));
  if (port === undefined) return undefined;
  if (isIP(host) === 4 || (isIP(host) === 0 && HOSTNAME.test(host))) return { host, port };
  return undefined;
}

/** RFC 7239 `forwarded` value as ztunnel sends it: `for="ip:port"`, plus `;host=<svc>` when known. */
export function buildForwarded(forIp: string, forPort: number, host?: string): string {
  const value = `for="${formatAuthority(forIp, forPort)}"`;
  return host ? `${value};host=${host}` : value;
}

export interface Forwarded {
  for?: string;
  host?: string;
}

/** Reads `for` and `host` from the first element of a `forwarded` header. */
export function parseForwarded(header: string | undefined): Forwarded | undefined {
  if (!header) return undefined;
  const first = header.split(',')[0]!;
  const out: Forwarded = {};
  for (const pair of first.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const key = pair.slice(0, eq).trim().toLowerCase();
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (key === 'for' || key === 'host') out[key] = value;
  }
  return out.for === undefined && out.host === undefined ? undefined : out;
}

/** W3C baggage `k=v,k2=v2` into a map; member properties (after `;`) are dropped, values percent-decoded. */
export function parseBaggage(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const member of header.split(',')) {
    const kv = member.split(';', 1)[0]!;
    const eq = kv.indexOf('=');
    if (eq <= 0) continue;
    const key = kv.slice(0, eq).trim();
    const raw = kv.slice(eq + 1).trim();
    let value = raw;
    try {
      value = decodeURIComponent(raw);
    } catch {
      // Keep the raw text when a peer sends a broken escape; baggage is informational.
    }
    if (key) out.set(key, value);
  }
  return out;
}

/** Source workload metadata as ztunnel's baggage: only non-empty entries, in a fixed order. */
export function buildBaggage(entries: ReadonlyArray<readonly [string, string | undefined]>): string {
  return entries
    .filter((e): e is readonly [string, string] => !!e[1])
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export interface TraceParent {
  traceId: string;
  parentId: string;
  flags: string;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export function parseTraceparent(header: string | undefined): TraceParent | undefined {
  const m = header ? TRACEPARENT.exec(header.trim()) : null;
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return { traceId: m[1]!, parentId: m[2]!, flags: m[3]! };
}

// Random bytes for trace ids, fetched a few KiB at a time: one randomBytes() call per connection cost more than the
// rest of building the CONNECT headers.
const TRACE_RANDOM_POOL = 24 * 256;
let traceRandom = Buffer.alloc(0);
let traceRandomAt = 0;

/** A fresh random `traceparent` (not sampled), one per proxied connection. */
export function newTraceparent(): string {
  if (traceRandomAt + 24 > traceRandom.length) {
    traceRandom = randomBytes(TRACE_RANDOM_POOL);
    traceRandomAt = 0;
  }
  const at = traceRandomAt;
  traceRandomAt += 24;
  return `00-${traceRandom.toString('hex', at, at + 16)}-${traceRandom.toString('hex', at + 16, at + 24)}-00`;
}
