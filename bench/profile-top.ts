// Summarises V8 .cpuprofile files (from ztunnel's admin /debug/pprof/profile or node --cpu-prof): the functions
// with the most self time, and the share of time spent in (idle), (garbage collector) and (program).
//   node dist/bench/profile-top.js FILE.cpuprofile… [--top N] [--callers NAME]
// --inclusive: rank by total time (self plus callees) instead of self time.
// --callers NAME: for the frames whose name starts with NAME, where their self time comes from (the call stacks,
// innermost first, up to four frames).
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function frameName(n: ProfileNode): string {
  const { functionName, url, lineNumber } = n.callFrame;
  const where = url ? `${url.replace(/^.*\/(node_modules|dist|src)\//, '$1/').replace(/^node:/, '')}:${lineNumber + 1}` : '';
  return `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
}

function summarise(file: string, top: number, callersOf?: string, inclusive = false): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stacks = new Map<string, number>();
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const name = frameName(byId.get(id)!);
    if (inclusive) {
      // Each function once per sample, however often it recurses in that stack.
      const seen = new Set<string>();
      for (let p: number | undefined = id; p !== undefined; p = parent.get(p)) seen.add(frameName(byId.get(p)!));
      seen.delete('(root)');
      for (const f of seen) self.set(f, (self.get(f) ?? 0) + dt);
    } else {
      self.set(name, (self.get(name) ?? 0) + dt);
    }
    if (callersOf && name.startsWith(callersOf)) {
      const frames = [name];
      for (let p = parent.get(id); p !== undefined && frames.length < 5; p = parent.get(p)) frames.push(frameName(byId.get(p)!));
      const key = frames.join(' < ');
      stacks.set(key, (stacks.get(key) ?? 0) + dt);
    }
  });
  const idle = self.get('(idle)') ?? 0;
  const busy = total - idle;
  const rows = [...self.entries()].filter(([n]) => n !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top);
  const lines = [`${file}: ${(total / 1e6).toFixed(1)} s sampled, busy ${((busy / total) * 100).toFixed(1)} %`];
  for (const [name, us] of rows) lines.push(`  ${((us / busy) * 100).toFixed(1).padStart(5)} %  ${(us / 1e3).toFixed(0).padStart(7)} ms  ${name}`);
  if (callersOf) {
    lines.push(`  stacks of ${callersOf}:`);
    for (const [stack, us] of [...stacks.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      lines.push(`  ${(us / 1e3).toFixed(0).padStart(7)} ms  ${stack}`);
    }
  }
  return lines.join('\n');
}

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 25;
const inclusiveAt = args.indexOf('--inclusive');
const inclusive = inclusiveAt >= 0 && args.splice(inclusiveAt, 1).length > 0;
const callersAt = args.indexOf('--callers');
const callersOf = callersAt >= 0 ? args.splice(callersAt, 2)[1] : undefined;
if (args.length === 0) {
  process.stderr.write('usage: profile-top FILE.cpuprofile… [--top N]\n');
  process.exit(2);
}
for (const file of args) process.stdout.write(`${summarise(file, top, callersOf, inclusive)}\n\n`);
