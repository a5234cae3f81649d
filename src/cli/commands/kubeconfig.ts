// `ambit kubeconfig`: print the local cluster's kubeconfig (context `ambit-<cluster>`), as `kind get kubeconfig` does,
// for tools that want it in a file of their own rather than merged into ~/.kube/config.
import type { Command } from 'commander';
import { ClusterClient, withClusterOption } from '../../local/client.js';

export function register(program: Command): void {
  withClusterOption(
    program.command('kubeconfig').description("Print the local cluster's kubeconfig (context ambit-<cluster>, admin credentials)"),
  ).action(async (opts: { cluster?: string }) => {
    const client = ClusterClient.fromOptions(opts);
    // A kubeconfig left in the state directory of a cluster that is not running names a server nobody answers on.
    await client.call('GET', '/v1/status');
    const text = client.kubeconfig();
    if (text === undefined) {
      throw new Error(
        `cluster "${client.name}" has no kubeconfig yet: its API server has not written ${client.layout.kubeconfig}; ` +
          `try again in a moment, or see ${client.layout.supervisorLog}`,
      );
    }
    process.stdout.write(text);
  });
}
