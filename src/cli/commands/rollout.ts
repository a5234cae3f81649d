// `ambit rollout restart COMPONENT [--node NODE]`: replaces a cluster component's processes, as
// `kubectl rollout restart daemonset/ztunnel -n istio-system` does. ztunnel is replaced without a gap in new
// connections (the new process takes the node's pods over before the old one drains); see docs/local-cluster.md.
import type { Command } from 'commander';
import { ClusterClient, withClusterOption } from '../../local/client.js';

/** Generous: each node waits for its new ztunnel to take over, then for the old one's drain. */
const ROLLOUT_TIMEOUT_MS = 10 * 60_000;

export function register(program: Command): void {
  withClusterOption(
    program
      .command('rollout')
      .description('Restart a component (ztunnel, controlplane, node-agent) one process at a time; ztunnel without dropping new connections')
      .argument('<action>', 'restart (the only action)')
      .argument('<component>', 'component name, e.g. ztunnel (daemonset/ztunnel is accepted too)')
      .option('--node <node>', 'only the process on this node (per-node components)'),
  ).action(async (action: string, component: string, opts: { node?: string; cluster?: string }) => {
    if (action !== 'restart') throw new Error(`unknown rollout action "${action}": only "restart" is supported`);
    const client = ClusterClient.fromOptions(opts);
    const name = component.replace(/^(daemonset|ds|deployment|deploy)(\.apps)?\//, '');
    const { restarted } = await client.call<{ restarted: string[] }>('POST', '/v1/rollout/restart', { name, node: opts.node }, { timeoutMs: ROLLOUT_TIMEOUT_MS });
    for (const line of restarted) process.stdout.write(`${line}\n`);
  });
}
