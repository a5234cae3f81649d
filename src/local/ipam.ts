// Address allocation for pods (per node pod CIDR) and Service VIPs (service CIDR). Allocation goes round-robin
// rather than lowest-free so a just-released address is not handed straight to a new workload while peers (and,
// later, proxies) may still hold it.

function toInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`invalid IPv4 address "${ip}"`);
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

function toIP(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Every address of the range is in use. */
export class AddressPoolExhausted extends Error {}

export class AddressPool {
  private readonly first: number;
  private readonly last: number;
  private readonly used = new Set<number>();
  private next: number;

  /** Hands out addresses of `cidr` except the network and broadcast addresses and `reserved`. */
  constructor(
    readonly cidr: string,
    reserved: string[] = [],
  ) {
    const [base, len] = cidr.split('/');
    const size = 2 ** (32 - Number(len));
    const network = toInt(base!) & ~(size - 1);
    this.first = network + 1;
    this.last = network + size - 2;
    this.next = this.first;
    for (const r of reserved) this.used.add(toInt(r));
  }

  contains(ip: string): boolean {
    try {
      const n = toInt(ip);
      return n >= this.first && n <= this.last;
    } catch {
      return false;
    }
  }

  allocate(): string {
    const count = this.last - this.first + 1;
    for (let i = 0; i < count; i++) {
      const candidate = this.next;
      this.next = this.next >= this.last ? this.first : this.next + 1;
      if (!this.used.has(candidate)) {
        this.used.add(candidate);
        return toIP(candidate);
      }
    }
    throw new AddressPoolExhausted(`no free address left in ${this.cidr}`);
  }

  /** Claims a specific address (a Service with a fixed clusterIP); false when taken or outside the range. */
  claim(ip: string): boolean {
    if (!this.contains(ip)) return false;
    const n = toInt(ip);
    if (this.used.has(n)) return false;
    this.used.add(n);
    return true;
  }

  release(ip: string): void {
    try {
      this.used.delete(toInt(ip));
    } catch {
      // Not an address we handed out.
    }
  }
}
