// ztunnel's on-demand DNS (state.rs resolve_on_demand_dns): a Service endpoint that has no IP but a hostname (an
// endpoint of a ServiceEntry with resolution DNS) is resolved when a connection picks it. ztunnel asks its pod's
// system resolver, the cluster DNS; Ambit asks DNS_UPSTREAM, the resolver the DNS proxy relays to, from inside the
// connecting pod's netns with the proxy mark, over the DNS proxy's own exchange code. A and AAAA are asked in parallel
// (ztunnel's Ipv4AndIpv6 strategy) so that the caller can prefer the family of the address the application dialed.
import { randomInt } from 'node:crypto';
import dnsPacket from 'dns-packet';
import { exchangeTcp, exchangeUdp, type DnsUpstream } from './dns.js';

export interface ResolvedAddresses {
  readonly v4: readonly string[];
  readonly v6: readonly string[];
}

export interface AnswerAddresses {
  addresses: string[];
  /** How long the addresses may be kept: the smallest TTL among their records, the longest allowed without records. */
  ttlSeconds: number;
}

/** hickory's default positive_max_ttl: no answer is kept longer than a day whatever its TTL says. */
const MAX_TTL_SECONDS = 86_400;
/** Hostnames kept per pod; hickory's cache, which ztunnel sizes at 4096, is shared by all of a node's pods. */
const CACHE_ENTRIES = 512;
const RCODE_NOERROR = 0;

/** A lookup that got no valid answer (timeout, socket error, or an rcode other than NOERROR). */
export class DnsLookupError extends Error {}

/**
 * One address picked at random among those of the preferred family, else among the others (ztunnel: "without this, we
 * run into trouble in pure v4 or pure v6 environments"). Undefined when there is none.
 */
export function pickResolvedAddress(resolved: ResolvedAddresses, preferV6: boolean, random: () => number = Math.random): string | undefined {
  const preferred = preferV6 ? resolved.v6 : resolved.v4;
  const list = preferred.length > 0 ? preferred : preferV6 ? resolved.v4 : resolved.v6;
  return list.length > 0 ? list[Math.floor(random() * list.length)] : undefined;
}

/**
 * The A or AAAA records of a reply. Records of the asked type only: a recursive resolver puts the CNAME chain that
 * led to them in the same section. A NOERROR reply without such records is valid and gives no addresses.
 */
export function answerAddresses(reply: dnsPacket.DecodedPacket, type: 'A' | 'AAAA'): AnswerAddresses {
  const rcode = (reply.flags ?? 0) & 0xf;
  // dns-packet decodes the rcode's name; its type definitions do not carry it.
  if (rcode !== RCODE_NOERROR) throw new DnsLookupError(`${type} lookup answered ${(reply as unknown as { rcode: string }).rcode}`);
  const addresses: string[] = [];
  let ttlSeconds = MAX_TTL_SECONDS;
  for (const a of reply.answers ?? []) {
    if (a.type !== type) continue;
    addresses.push(a.data);
    ttlSeconds = Math.min(ttlSeconds, a.ttl ?? 0);
  }
  return { addresses, ttlSeconds };
}

/** Resolved addresses by hostname until their TTL runs out; beyond `maxEntries`, the entry stored first goes. */
export class ResolvedAddressCache {
  private readonly entries = new Map<string, { resolved: ResolvedAddresses; expiresAtMs: number }>();

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(hostname: string, nowMs: number): ResolvedAddresses | undefined {
    const e = this.entries.get(hostname);
    if (!e) return undefined;
    if (nowMs < e.expiresAtMs) return e.resolved;
    this.entries.delete(hostname);
    return undefined;
  }

  set(hostname: string, resolved: ResolvedAddresses, ttlSeconds: number, nowMs: number): void {
    this.entries.delete(hostname);
    if (ttlSeconds <= 0) return;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(hostname, { resolved, expiresAtMs: nowMs + Math.min(ttlSeconds, MAX_TTL_SECONDS) * 1000 });
  }
}

/** One pod's on-demand resolver: its lookups leave from the pod's netns, its cache lives as long as the pod's proxy. */
export class OnDemandResolver {
  private readonly cache = new ResolvedAddressCache(CACHE_ENTRIES);
  /** Connections that pick the same hostname while it is being looked up share the lookup. */
  private readonly pending = new Map<string, Promise<ResolvedAddresses>>();

  constructor(
    private readonly upstream: DnsUpstream,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /**
   * The A and AAAA addresses of `hostname`, synchronously when an earlier answer is still fresh. Rejects with a
   * DnsLookupError when neither lookup got a valid answer; a valid answer without records gives empty lists.
   */
  resolve(hostname: string): ResolvedAddresses | Promise<ResolvedAddresses> {
    const cached = this.cache.get(hostname, this.nowMs());
    if (cached) return cached;
    let p = this.pending.get(hostname);
    if (!p) {
      p = this.lookupBoth(hostname).finally(() => this.pending.delete(hostname));
      this.pending.set(hostname, p);
    }
    return p;
  }

  private async lookupBoth(hostname: string): Promise<ResolvedAddresses> {
    const [a, aaaa] = await Promise.allSettled([this.lookup(hostname, 'A'), this.lookup(hostname, 'AAAA')]);
    // As hickory's Ipv4AndIpv6: one family failing still leaves the other's answer.
    if (a.status === 'rejected' && aaaa.status === 'rejected') {
      throw new DnsLookupError(`${(a.reason as Error).message}; ${(aaaa.reason as Error).message}`);
    }
    const v4 = a.status === 'fulfilled' ? a.value : undefined;
    const v6 = aaaa.status === 'fulfilled' ? aaaa.value : undefined;
    const resolved: ResolvedAddresses = { v4: v4?.addresses ?? [], v6: v6?.addresses ?? [] };
    // Kept only when both families answered and one has records: a failed family would stay hidden until the entry
    // expires, and answers without any address are not cached (hickory caches them by the SOA's TTL, which this
    // lookup does not read), so each connection asks again.
    if (v4 && v6 && (v4.addresses.length > 0 || v6.addresses.length > 0)) {
      this.cache.set(hostname, resolved, Math.min(v4.ttlSeconds, v6.ttlSeconds), this.nowMs());
    }
    return resolved;
  }

  private async lookup(hostname: string, type: 'A' | 'AAAA'): Promise<AnswerAddresses> {
    const query = dnsPacket.encode({ type: 'query', id: randomInt(0x10000), flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name: hostname, class: 'IN' }] });
    let reply: dnsPacket.DecodedPacket;
    try {
      reply = dnsPacket.decode(await exchangeUdp(this.upstream, query));
      // Too big for UDP: the same question again over TCP, as every stub resolver does.
      if (reply.flag_tc) reply = dnsPacket.decode(await exchangeTcp(this.upstream, query));
    } catch (e) {
      throw new DnsLookupError(`${type} lookup failed: ${(e as Error).message}`);
    }
    return answerAddresses(reply, type);
  }
}
