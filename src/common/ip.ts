// IP address helpers shared by the control plane and the proxies: the raw byte form xDS carries (4 or 16 bytes, as
// Go's netip and Rust's IpAddr hold them), its text form, CIDRs, and the one canonical spelling used as a map key. The
// parsers follow Go's netip.ParseAddr (what istiod accepts) and read character codes, so they also serve the data path.
import { hexDigitValue } from './hex.js';

/** `10.0.0.0/8`, `fd00::/64` or a bare IP (a full-length prefix); undefined when it does not parse. */
export function parseCidr(v: string): { address: Uint8Array; length: number } | undefined {
  if (v === '') return undefined;
  const slash = v.indexOf('/');
  const ip = slash >= 0 ? v.slice(0, slash) : v;
  const address = ipToBytes(ip);
  if (address === undefined) return undefined;
  const bits = address.length * 8;
  if (slash < 0) return { address, length: bits };
  const lenText = v.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText)) return undefined;
  const length = Number(lenText);
  return length <= bits ? { address, length } : undefined;
}

const DOT = 0x2e;
const COLON = 0x3a;

/**
 * Dotted-quad IPv4 in s[start, end) without leading zeros (Go's netip rules) as an unsigned 32-bit number, or -1.
 * It reads character codes only, so the data path can parse an address per request without allocating.
 */
export function parseIpv4(s: string, start = 0, end = s.length): number {
  let result = 0;
  let parts = 0;
  let value = 0;
  let digits = 0;
  for (let i = start; i <= end; i++) {
    const c = i < end ? s.charCodeAt(i) : DOT; // the end acts as a final '.'
    if (c === DOT) {
      if (digits === 0 || parts === 4) return -1;
      result = result * 256 + value;
      parts++;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) return -1; // leading zero
      value = value * 10 + (c - 0x30);
      if (value > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  return parts === 4 ? result : -1;
}

/**
 * IPv6 text as Go's netip.ParseAddr reads it (`::` for one or more zero groups, an embedded IPv4 address in the last
 * two groups, a non-empty `%zone`, which is dropped) into the 16 bytes of `out`; false when it is not one, and `out`
 * then holds junk. Like parseIpv4 it allocates nothing, so a caller can keep reusing one buffer.
 */
export function parseIpv6Into(s: string, out: Uint8Array): boolean {
  let end = s.indexOf('%');
  if (end < 0) end = s.length;
  else if (end === s.length - 1) return false; // an empty zone
  let filled = 0; // bytes of `out` written
  let gapAt = -1; // where `::` stands, as a byte index of `out`
  let i = 0;
  if (end >= 2 && s.charCodeAt(0) === COLON && s.charCodeAt(1) === COLON) {
    gapAt = 0;
    i = 2;
  }
  while (i < end) {
    if (filled === 16) return false; // text left after eight groups
    const start = i;
    let value = 0;
    for (; i < end; i++) {
      const digit = hexDigitValue(s.charCodeAt(i));
      if (digit < 0) break;
      if (i - start === 4) return false; // a fifth digit
      value = value * 16 + digit;
    }
    if (i === start) return false; // a group without digits
    if (i < end && s.charCodeAt(i) === DOT) {
      // An embedded IPv4 address ends the text as its last two groups: after six groups, or after fewer and a `::`.
      if (filled > 12 || (gapAt < 0 && filled !== 12)) return false;
      const v4 = parseIpv4(s, start, end);
      if (v4 < 0) return false;
      out[filled++] = v4 >>> 24;
      out[filled++] = (v4 >>> 16) & 0xff;
      out[filled++] = (v4 >>> 8) & 0xff;
      out[filled++] = v4 & 0xff;
      break;
    }
    out[filled++] = value >> 8;
    out[filled++] = value & 0xff;
    if (i === end) break;
    if (s.charCodeAt(i) !== COLON || i + 1 === end) return false; // a group must be followed by ':' and more
    i++;
    if (s.charCodeAt(i) === COLON) {
      if (gapAt >= 0) return false; // a second `::`
      gapAt = filled;
      i++;
    }
  }
  if (filled === 16) return gapAt < 0; // `::` stands for at least one zero group
  if (gapAt < 0) return false; // too few groups
  // Move the groups after `::` to the end and zero the gap.
  const gap = 16 - filled;
  for (let j = filled - 1; j >= gapAt; j--) out[j + gap] = out[j]!;
  out.fill(0, gapAt, gapAt + gap);
  return true;
}

/** Raw 4- or 16-byte form of an IP address (IPv4-mapped IPv6 stays 16 bytes, as Go's netip keeps it). */
export function ipToBytes(ip: string): Uint8Array | undefined {
  const v4 = parseIpv4(ip);
  if (v4 >= 0) return new Uint8Array([v4 >>> 24, (v4 >>> 16) & 0xff, (v4 >>> 8) & 0xff, v4 & 0xff]);
  const v6 = new Uint8Array(16);
  return parseIpv6Into(ip, v6) ? v6 : undefined;
}

/** Text form of raw address bytes (IPv6 compressed like Go/Rust print it). */
export function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // Longest run (≥2) of zero groups becomes "::".
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** `10.0.0.1`, also from `::ffff:10.0.0.1` (dual-stack sockets) and any IPv6 spelling; undefined if not an IP. */
/** Whether `ip` lies in the network `net`/`length` (same family; raw bytes). */
export function cidrContains(net: Uint8Array, length: number, ip: Uint8Array): boolean {
  if (net.length !== ip.length || length < 0 || length > net.length * 8) return false;
  const whole = length >> 3;
  for (let i = 0; i < whole; i++) if (net[i] !== ip[i]) return false;
  const rest = length & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (net[whole]! & mask) === (ip[whole]! & mask);
}

export function normalizeIp(ip: string): string | undefined {
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const bytes = ipToBytes(v4mapped ? v4mapped[1]! : ip);
  return bytes ? bytesToIp(bytes) : undefined;
}

/** `host:port`, also `https://host:port` and `[v6]:port`; names the setting when invalid. */
export function parseHostPort(value: string, name: string): { host: string; port: number } {
  const v = value.replace(/^https?:\/\//, '').replace(/\/$/, '');
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port <= 65535)) throw new Error(`${name}: invalid address "${value}" (expected host:port)`);
  return { host: m[1] ?? m[2]!, port };
}
