// `ambit logs`: print (and follow) the output of a pod's container or of a cluster component.
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { ClusterClient, parseTarget, withClusterOption } from '../../local/client.js';

/** The last `lines` lines of a file, read from its end (logs can be large). */
function lastLines(path: string, lines: number): { text: string; size: number } {
  const size = statSync(path).size;
  const fd = openSync(path, 'r');
  try {
    let pos = size;
    let text = '';
    const chunk = Buffer.alloc(64 * 1024);
    while (pos > 0 && text.split('\n').length <= lines + 1) {
      const n = Math.min(chunk.length, pos);
      pos -= n;
      readSync(fd, chunk, 0, n, pos);
      text = chunk.toString('utf8', 0, n) + text;
    }
    const all = text.split('\n');
    const trailing = all[all.length - 1] === '' ? all.pop() : undefined;
    return { text: all.slice(-lines).join('\n') + (trailing === '' ? '\n' : ''), size };
  } finally {
    closeSync(fd);
  }
}

/** Puts `prefix` before every line of `text` (lines of several logs interleave, as `kubectl logs --prefix` shows). */
function prefixLines(text: string, prefix: string): string {
  return prefix ? text.replace(/^(?=.)/gm, prefix) : text;
}

async function follow(path: string, from: number, prefix: string): Promise<never> {
  let pos = from;
  // A line written in two pieces is printed once it is complete, so prefixes land only at line starts.
  let partial = '';
  for (;;) {
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      throw new Error(`log ${path} is gone (the pod or cluster was deleted)`);
    }
    if (size < pos) pos = 0; // Truncated: start over.
    if (size > pos) {
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        const s = createReadStream(path, { start: pos, end: size - 1 });
        s.on('error', reject);
        s.on('data', (c) => chunks.push(c as Buffer));
        s.on('end', resolve);
      });
      pos = size;
      const text = partial + Buffer.concat(chunks).toString('utf8');
      const end = prefix ? text.lastIndexOf('\n') + 1 : text.length;
      partial = text.slice(end);
      process.stdout.write(prefixLines(text.slice(0, end), prefix));
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function register(program: Command): void {
  withClusterOption(
    program
      .command('logs')
      .description('Print the logs of a pod container (NS/NAME) or a component (ztunnel: every node, each line prefixed [node-N], or --node N; controlplane)')
      .argument('<target>', 'NAMESPACE/NAME (pod or Deployment), or a component name')
      .option('-c, --container <name>', 'container of the pod')
      .option('--node <node>', 'only this node of a per-node component')
      .option('-n, --namespace <ns>', 'namespace when the target has none')
      .option('--tail <n>', 'only the last N lines', '-1')
      .option('-f, --follow', 'keep printing new output')
      .option('-p, --previous', "a pod container's output before its last restart"),
  ).action(async (target: string, opts: { container?: string; node?: string; namespace?: string; tail: string; follow?: boolean; previous?: boolean; cluster?: string }) => {
    const client = ClusterClient.fromOptions(opts);
    const tail = Number(opts.tail);
    if (!Number.isInteger(tail)) throw new Error(`--tail must be an integer, got "${opts.tail}"`);
    // A bare name goes to the supervisor without a namespace: it may be a component.
    const t = target.includes('/') || opts.namespace ? parseTarget(target, opts.namespace) : { name: target };
    const { logs } = await client.call<{ logs: { path: string; node?: string }[] }>('POST', '/v1/logs', {
      ...t,
      container: opts.container,
      node: opts.node,
      ...(opts.previous ? { previous: true } : {}),
    });
    // Several logs (a per-node component without --node): every line says which node it came from.
    const prefixOf = (node: string | undefined) => (logs.length > 1 && node ? `[${node}] ` : '');
    const sizes = logs.map(({ path, node }) => {
      try {
        const out = lastLines(path, tail < 0 ? Number.MAX_SAFE_INTEGER : tail);
        process.stdout.write(prefixLines(out.text, prefixOf(node)));
        return out.size;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // No output yet is not an error.
        return 0;
      }
    });
    // A previous run's log is finished: nothing more will come to follow, as kubectl logs -p -f ends.
    if (opts.follow && !opts.previous) await Promise.all(logs.map(({ path, node }, i) => follow(path, sizes[i]!, prefixOf(node))));
  });
}
