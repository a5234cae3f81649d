// `ambit controlplane [--kubeconfig PATH] [--config PATH…]`: istiod's role. Reads a Kubernetes cluster through its API
// (with --kubeconfig, or with no files given: $KUBECONFIG, ~/.kube/config, then the in-cluster service account; the
// local cluster starts it with a kubeconfig of its own) and/or configuration files; translates them into
// what ztunnels and waypoints receive, serves it over Delta ADS together with the mesh CA on one TLS port, deploys
// waypoints for Gateways of class istio-waypoint (in a cluster), and follows changes until stopped.
import { join } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_TRUST_DOMAIN } from '../../api/types.js';
import { DEFAULT_TRUSTED_NODE_ACCOUNTS, parseTrustedNodeAccounts } from '../../controlplane/auth.js';
import { DEFAULT_WORKLOAD_CERT_TTL_SECONDS, MAX_WORKLOAD_CERT_TTL_SECONDS } from '../../controlplane/ca.js';
import { scopedLogger } from '../../controlplane/log.js';
import { SettingsReader, parseDuration } from '../../common/settings.js';
import { runControlPlane } from '../../controlplane/run.js';
import { DEFAULT_DEBUG_LISTEN, DEFAULT_XDS_LISTEN } from '../../controlplane/server.js';
import { DEFAULT_CLUSTER, stateDirFor } from '../../local/layout.js';

interface Options {
  config?: string[];
  kubeconfig?: string;
  listen: string;
  debugListen: string;
  stateDir?: string;
  nodeTokens?: string;
  serviceAccountJwks?: string;
  caTrustedNodeAccounts?: string;
  advertiseAddress?: string;
  caCert?: string;
  caKey?: string;
  trustDomain: string;
  defaultWorkloadCertTtl?: string;
  maxWorkloadCertTtl?: string;
}

export function register(program: Command): void {
  program
    .command('controlplane')
    .description("Run the control plane (istiod's role): xDS for ztunnels and waypoints, the mesh certificate authority, waypoint deployment")
    .option('--config <path...>', 'configuration files or directories (*.yaml, *.yml, *.json) to serve and watch')
    .option(
      '--kubeconfig <path>',
      'read the Kubernetes cluster of this kubeconfig (its current context); with neither --config nor --kubeconfig: $KUBECONFIG, ~/.kube/config, then the in-cluster service account',
    )
    .option('--listen <addr>', 'TLS gRPC address for xDS and the CA', DEFAULT_XDS_LISTEN)
    .option('--debug-listen <addr>', 'plain HTTP address for /ready, /debug/status and /metrics', DEFAULT_DEBUG_LISTEN)
    .option('--state-dir <dir>', `where the self-signed root CA is kept (default: the "${DEFAULT_CLUSTER}" cluster's state dir/controlplane)`)
    .option('--node-tokens <file>', 'without a Kubernetes API: JSON file {"<token>": "<node name>"} of accepted node tokens (default: <state-dir>/node-tokens.json)')
    .option('--service-account-jwks <file>', "without a Kubernetes API: public keys (JWKS) of the service account token issuer whose pod tokens waypoints show")
    .option(
      '--ca-trusted-node-accounts <list>',
      `with a Kubernetes API: <namespace>/<service account>,… whose pods are node proxies, getting certificates for the pods of their node (env CA_TRUSTED_NODE_ACCOUNTS; default ${DEFAULT_TRUSTED_NODE_ACCOUNTS.join(',')})`,
    )
    .option('--advertise-address <host:port>', 'the xDS/CA address waypoint pods are told to dial (default: --listen)')
    .option('--ca-cert <file>', 'PEM bundle of your own CA: signing certificate, intermediates, root last (with --ca-key)')
    .option('--ca-key <file>', 'private key of the first certificate in --ca-cert')
    .option('--trust-domain <domain>', 'SPIFFE trust domain of the mesh', DEFAULT_TRUST_DOMAIN)
    .option('--default-workload-cert-ttl <duration>', 'lifetime of a workload certificate whose request names none (env DEFAULT_WORKLOAD_CERT_TTL; default 24h)')
    .option('--max-workload-cert-ttl <duration>', 'longest workload certificate lifetime a request may ask for; longer is refused (env MAX_WORKLOAD_CERT_TTL; default 2160h)')
    .action(async (opts: Options) => {
      // istiod's default: the cluster it runs in (or the one the user's kubeconfig names).
      const readsKubernetes = opts.kubeconfig !== undefined || !opts.config?.length;
      // istiod's environment variables, a flag winning over them.
      const settings = new SettingsReader(process.env);
      const seconds = (v: string, name: string) => {
        const s = parseDuration(v, name) / 1000;
        if (!Number.isInteger(s) || s < 1) throw new Error(`${name}: expected a whole number of seconds, at least 1s, got "${v}"`);
        return s;
      };
      const flag = (v: string | undefined, name: string) => (v === undefined ? undefined : seconds(v, name));
      const defaultWorkloadCertTtlSeconds = settings.pick(flag(opts.defaultWorkloadCertTtl, '--default-workload-cert-ttl'), 'DEFAULT_WORKLOAD_CERT_TTL', seconds, DEFAULT_WORKLOAD_CERT_TTL_SECONDS);
      const maxWorkloadCertTtlSeconds = settings.pick(flag(opts.maxWorkloadCertTtl, '--max-workload-cert-ttl'), 'MAX_WORKLOAD_CERT_TTL', seconds, MAX_WORKLOAD_CERT_TTL_SECONDS);
      const trustedNodeAccounts = settings.pick(
        opts.caTrustedNodeAccounts === undefined ? undefined : parseTrustedNodeAccounts(opts.caTrustedNodeAccounts, '--ca-trusted-node-accounts'),
        'CA_TRUSTED_NODE_ACCOUNTS',
        parseTrustedNodeAccounts,
        DEFAULT_TRUSTED_NODE_ACCOUNTS,
      );
      if (settings.problems.length) throw new Error(settings.problems.join('; '));
      const cp = await runControlPlane({
        ...opts,
        config: opts.config ?? [],
        kubernetes: readsKubernetes ? { kubeconfig: opts.kubeconfig } : undefined,
        stateDir: opts.stateDir ?? join(stateDirFor(DEFAULT_CLUSTER), 'controlplane'),
        defaultWorkloadCertTtlSeconds,
        maxWorkloadCertTtlSeconds,
        trustedNodeAccounts,
      });
      const signal = await new Promise<string>((resolve) => {
        process.once('SIGINT', () => resolve('SIGINT'));
        process.once('SIGTERM', () => resolve('SIGTERM'));
      });
      scopedLogger('controlplane').info(`${signal} received, shutting down`);
      await cp.close();
    });
}
