// `ambit version`: as istioctl version, the client's version, the running control plane's and the data plane's
// (each distinct proxy version with its count, from the control plane's /debug/syncz), plus the Istio release whose
// behaviour Ambit follows.
import type { Command } from 'commander';
import { AMBIT_VERSION, ISTIO_RELEASE } from '../../common/version.js';
import { ClusterClient, withClusterOption } from '../../local/client.js';
import { fetchSyncz } from './proxy-status.js';

export function register(program: Command): void {
  withClusterOption(
    program
      .command('version')
      .description('Print the client, control plane and proxy versions, and the Istio release Ambit follows')
      .option('-o, --output <format>', 'json for every proxy and its version')
      .option('--remote <bool>', 'also ask the running cluster (false: client only)', 'true'),
  ).action(async (opts: { output?: string; remote: string; cluster?: string }) => {
    const out: { clientVersion: string; istioRelease: string; controlPlaneVersion?: string; proxies?: { id: string; version: string }[]; error?: string } = {
      clientVersion: AMBIT_VERSION,
      istioRelease: ISTIO_RELEASE,
    };
    if (opts.remote !== 'false') {
      try {
        const syncz = await fetchSyncz(ClusterClient.fromOptions(opts));
        out.controlPlaneVersion = syncz.controlPlane.identifier.info.version;
        out.proxies = syncz.resources.map((r) => ({ id: r.node.id, version: r.node.metadata.ISTIO_VERSION || 'unknown' }));
      } catch (err) {
        out.error = (err as Error).message;
      }
    }
    if (opts.output === 'json') {
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    } else {
      const lines = [`client version: ${out.clientVersion}`];
      if (out.controlPlaneVersion !== undefined) lines.push(`control plane version: ${out.controlPlaneVersion}`);
      const counts = new Map<string, number>();
      for (const p of out.proxies ?? []) counts.set(p.version, (counts.get(p.version) ?? 0) + 1);
      for (const [v, n] of [...counts].sort()) lines.push(`data plane version: ${v} (${n} proxies)`);
      lines.push(`follows Istio: ${out.istioRelease}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    if (out.error !== undefined) {
      process.stderr.write(`${out.error}\n`);
      process.exitCode = 1;
    }
  });
}
