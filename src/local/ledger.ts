// The ledger: an append-only record, in the state directory, of every namespace and process a cluster creates.
// Interfaces, addresses, routes and nft tables all live inside those namespaces, so removing the namespaces and
// the processes removes everything; the ledger lets `ambit down` do that even after the supervisor crashed.
import { appendFileSync, existsSync, readFileSync, rmSync, statfsSync, statSync } from 'node:fs';
import { isAlive, killGroup, processesInNetns, processStartTime, removeNetns } from './sys.js';

type Entry =
  | { kind: 'netns'; path: string }
  | { kind: 'netns-removed'; path: string }
  | { kind: 'process'; pid: number; start: number; what: string }
  | { kind: 'process-exited'; pid: number };

const NSFS_MAGIC = 0x6e736673;

export class Ledger {
  constructor(readonly path: string) {}

  private append(entry: Entry): void {
    appendFileSync(this.path, JSON.stringify(entry) + '\n');
  }

  netnsCreated(path: string): void {
    this.append({ kind: 'netns', path });
  }
  netnsRemoved(path: string): void {
    this.append({ kind: 'netns-removed', path });
  }
  /** Records a process that leads its own process group (spawned detached), so the whole group can be killed. */
  processStarted(pid: number, what: string): void {
    this.append({ kind: 'process', pid, start: processStartTime(pid) ?? 0, what });
  }
  processExited(pid: number): void {
    this.append({ kind: 'process-exited', pid });
  }

  /** What is still recorded as existing. */
  read(): { netns: string[]; processes: { pid: number; start: number; what: string }[] } {
    const netns = new Set<string>();
    const processes = new Map<number, { pid: number; start: number; what: string }>();
    if (!existsSync(this.path)) return { netns: [], processes: [] };
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      if (!line) continue;
      let e: Entry;
      try {
        e = JSON.parse(line) as Entry;
      } catch {
        continue; // A line torn by a crash mid-write; the rest of the ledger is still valid.
      }
      if (e.kind === 'netns') netns.add(e.path);
      else if (e.kind === 'netns-removed') netns.delete(e.path);
      else if (e.kind === 'process') processes.set(e.pid, e);
      else if (e.kind === 'process-exited') processes.delete(e.pid);
    }
    return { netns: [...netns], processes: [...processes.values()] };
  }
}

function nsInode(path: string): number | undefined {
  try {
    if (statfsSync(path).type !== NSFS_MAGIC) return undefined; // Not (or no longer) a namespace mount.
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let left = pids.filter(isAlive);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    left = left.filter(isAlive);
  }
  return left;
}

/**
 * SIGKILLs every process (but `exceptPid`) inside the network namespace mounted at `path`, as the kubelet kills what
 * is left in a pod's sandbox (an `ambit exec` session, a daemon a container left behind); returns the pids that did
 * not exit within 2 s.
 */
export async function killProcessesInNetns(path: string, exceptPid = process.pid): Promise<number[]> {
  const inode = nsInode(path);
  if (inode === undefined) return [];
  const inside = processesInNetns(inode).filter((pid) => pid !== exceptPid);
  for (const pid of inside) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Exited meanwhile.
    }
  }
  return waitGone(inside, 2000);
}

/**
 * Removes everything the ledger records: stops recorded processes (SIGTERM, then SIGKILL after `graceMs`), kills
 * any other process still inside a cluster namespace (e.g. an `ambit exec` session), unmounts the namespaces and,
 * when `removeDir` is given, deletes the state directory. Safe to run repeatedly and after a crash.
 */
export async function cleanUp(ledger: Ledger, options: { graceMs?: number; removeDir?: string; exceptPid?: number } = {}): Promise<string[]> {
  const problems: string[] = [];
  const { netns, processes } = ledger.read();
  const mine = options.exceptPid ?? process.pid;
  // A recorded pid only counts if it is still the same process (same start time): pids get reused.
  const live = processes.filter((p) => p.pid !== mine && processStartTime(p.pid) === p.start);
  for (const p of live) killGroup(p.pid, 'SIGTERM');
  for (const pid of await waitGone(live.map((p) => p.pid), options.graceMs ?? 3000)) killGroup(pid, 'SIGKILL');

  for (const path of netns) {
    if (nsInode(path) !== undefined) {
      const stuck = await killProcessesInNetns(path, mine);
      if (stuck.length) problems.push(`processes ${stuck.join(', ')} in ${path} did not exit`);
      try {
        await removeNetns(path);
      } catch (err) {
        problems.push((err as Error).message);
        continue;
      }
    }
    ledger.netnsRemoved(path);
  }
  if (options.removeDir && problems.length === 0) rmSync(options.removeDir, { recursive: true, force: true });
  return problems;
}
