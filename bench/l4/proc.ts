// What the L4 benchmark reads about processes from /proc: CPU time and RSS of the proxies, which processes live in
// a pod's network namespace (to pin them), and CPU affinity via taskset.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 on every Linux this runs on, but ask). */
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** User + system CPU seconds of a process (all its threads); throws if it is gone. */
export function cpuSeconds(pid: number): number {
  const stat = readProc(pid, 'stat');
  // comm (field 2) may contain spaces and parentheses: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is state (field 3), so utime (field 14) is fields[11] and stime (15) is fields[12].
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Resident set size in MB (VmRSS, 1 MB = 2^20 bytes); throws if the process is gone. */
export function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readProc(pid, 'status'));
  if (!m) throw new Error(`process ${pid} has no VmRSS (a zombie?)`);
  return Number(m[1]) / 1024;
}

function readProc(pid: number, file: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    throw new Error(`process ${pid} is gone (did the proxy crash or restart during the run?)`);
  }
}

/** Pids of every process whose network namespace is the one bind-mounted at `netnsPath`. */
export function pidsInNetns(netnsPath: string): number[] {
  const target = `net:[${statSync(netnsPath).ino}]`;
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) === target) out.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return out;
}

/** Sets the CPU affinity of every thread of `pid` (a cpu list such as "1" or "0-1"). */
export function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', cpus, String(pid)], { stdio: 'ignore' });
}

/** Samples the RSS of some processes every `intervalMs` and keeps each one's peak, until stopped. */
export class RssPeaks {
  private readonly peaks = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pids: number[],
    intervalMs = 200,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    for (const pid of this.pids) {
      try {
        this.peaks.set(pid, Math.max(this.peaks.get(pid) ?? 0, rssMb(pid)));
      } catch {
        // A proxy that died shows up as a failed phase elsewhere; its last peak stands.
      }
    }
  }

  /** Stops sampling; the peak RSS of each pid in MB, in the order given. */
  stop(): number[] {
    clearInterval(this.timer);
    this.sample();
    return this.pids.map((pid) => this.peaks.get(pid) ?? NaN);
  }
}
