// Process metrics, read at scrape time. `process_open_fds` and `process_max_fds` are what ztunnel's process collector
// exports (src/metrics/process.rs; Istio's ztunnel dashboard plots the first); CPU and resident memory use the
// Prometheus client libraries' standard names, so a cluster without cAdvisor (the local one) still shows both.
import { readdirSync, readFileSync } from 'node:fs';
import { Counter, Gauge, type Registry } from 'prom-client';

/** The soft RLIMIT_NOFILE from /proc/self/limits; undefined when unreadable or unlimited. */
function maxOpenFiles(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.slice('Max open files'.length).trim().split(/\s+/)[0]);
    return Number.isFinite(soft) ? soft : undefined;
  } catch {
    return undefined;
  }
}

export function registerProcessMetrics(registry: Registry): void {
  const registers = [registry];
  new Gauge({
    name: 'process_open_fds',
    help: 'Number of open file descriptors',
    registers,
    collect(this: Gauge) {
      try {
        // Listing the directory holds one descriptor of its own.
        this.set(readdirSync('/proc/self/fd').length - 1);
      } catch {
        // No /proc: leave the last value.
      }
    },
  });
  new Gauge({
    name: 'process_max_fds',
    help: 'Maximum number of file descriptors',
    registers,
    collect(this: Gauge) {
      const max = maxOpenFiles();
      if (max !== undefined) this.set(max);
    },
  });
  let cpuSecondsReported = 0;
  new Counter({
    name: 'process_cpu_seconds_total',
    help: 'Total user and system CPU time spent in seconds.',
    registers,
    collect(this: Counter) {
      const { user, system } = process.cpuUsage();
      const seconds = (user + system) / 1e6;
      this.inc(seconds - cpuSecondsReported);
      cpuSecondsReported = seconds;
    },
  });
  new Gauge({
    name: 'process_resident_memory_bytes',
    help: 'Resident memory size in bytes.',
    registers,
    collect(this: Gauge) {
      this.set(process.memoryUsage.rss());
    },
  });
}
