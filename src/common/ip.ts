// IP address helpers shared by the control plane and the proxies: the raw byte form xDS carries (4 or 16 bytes, as
// Go's netip and Rust's IpAddr hold them), its text form, CIDRs, and the one canonical spelling used as a map key.
import net from 'node:net';

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

/** Dotted-quad IPv4 without leading zeros (Go's netip rules), parsed without allocating intermediate strings. */
function parseIpv4(ip: string): Uint8Array | undefined {
  const out = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= ip.length; i++) {
    const c = i < ip.length ? ip.charCodeAt(i) : 46; // end of input acts as a final '.'
    if (c === 46) {
      if (digits === 0 || part > 3) return undefined;
      out[part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return undefined; // leading zero
      value = value * 10 + (c - 48);
      if (value > 255) return undefined;
      digits++;
    } else {
      return undefined;
    }
  }
  return part === 4 ? out : undefined;
}

/** Raw 4- or 16-byte form of an IP address (IPv4-mapped IPv6 stays 16 bytes, as Go's netip keeps it). */
export function ipToBytes(ip: string): Uint8Array | undefined {
  const v4 = parseIpv4(ip);
  if (v4 !== undefined) return v4;
  // Anything else must be IPv6 (net.isIP also accepts IPv4 forms Go's netip rejects, handled above).
  if (net.isIP(ip) !== 6) return undefined;
  let text = ip;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // An embedded dotted IPv4 tail becomes two hex groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const b = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups =
    rest === undefined ? headGroups : [...headGroups, ...new Array<string>(8 - headGroups.length - restGroups.length).fill('0'), ...restGroups];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  return out;
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
