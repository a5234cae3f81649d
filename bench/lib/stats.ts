// Measurement helpers shared by benchmarks: nearest-rank percentiles, wall/CPU timing, an RSS sampler, and a
// markdown table printer.

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when there are none. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Milliseconds on the monotonic clock (the same clock in every process on the machine). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export interface Timing<T> {
  result: T;
  wallMs: number;
  /** User + system CPU of this process while it ran. */
  cpuMs: number;
}

export async function timed<T>(fn: () => T | Promise<T>): Promise<Timing<T>> {
  const cpu0 = process.cpuUsage();
  const t0 = nowMs();
  const result = await fn();
  const wallMs = nowMs() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { result, wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/**
 * Samples this process's RSS on a timer. Synchronous work blocks the timer, so the kernel's high-water mark
 * (resourceUsage().maxRSS) is reported next to the sampled peak.
 */
export class RssSampler {
  peakBytes = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 100) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): void {
    const rss = process.memoryUsage.rss();
    if (rss > this.peakBytes) this.peakBytes = rss;
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }
}

export const MiB = 1024 * 1024;

/** A GitHub-flavoured markdown table. */
export function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function fmtMs(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}
