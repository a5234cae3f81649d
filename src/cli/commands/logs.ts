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

async function follow(path: string, from: number): Promise<never> {
  let pos = from;
  for (;;) {
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      throw new Error(`log ${path} is gone (the pod or cluster was deleted)`);
    }
    if (size < pos) pos = 0; // Truncated: start over.
    if (size > pos) {
      await new Promise<void>((resolve, reject) => {
        const s = createReadStream(path, { start: pos, end: size - 1 });
        s.on('error', reject);
        s.on('end', resolve);
        s.pipe(process.stdout, { end: false });
      });
      pos = size;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function register(program: Command): void {
  withClusterOption(
    program
      .command('logs')
      .description('Print the logs of a pod container (NS/NAME) or a component (e.g. ztunnel --node node-1, controlplane)')
      .argument('<target>', 'NAMESPACE/NAME (pod or Deployment), or a component name')
      .option('-c, --container <name>', 'container of the pod')
      .option('--node <node>', 'node of a per-node component')
      .option('-n, --namespace <ns>', 'namespace when the target has none')
      .option('--tail <n>', 'only the last N lines', '-1')
      .option('-f, --follow', 'keep printing new output'),
  ).action(async (target: string, opts: { container?: string; node?: string; namespace?: string; tail: string; follow?: boolean; cluster?: string }) => {
    const client = ClusterClient.fromOptions(opts);
    const tail = Number(opts.tail);
    if (!Number.isInteger(tail)) throw new Error(`--tail must be an integer, got "${opts.tail}"`);
    // A bare name goes to the supervisor without a namespace: it may be a component.
    const t = target.includes('/') || opts.namespace ? parseTarget(target, opts.namespace) : { name: target };
    const { path } = await client.call<{ path: string; description: string }>('POST', '/v1/logs', { ...t, container: opts.container, node: opts.node });
    let size = 0;
    try {
      const out = lastLines(path, tail < 0 ? Number.MAX_SAFE_INTEGER : tail);
      size = out.size;
      process.stdout.write(out.text);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // No output yet is not an error.
    }
    if (opts.follow) await follow(path, size);
  });
}
