// Prometheus metrics of the control plane, named as istiod names them (pilot_* for xDS, citadel_* for the CA) so
// existing dashboards and alerts keep working. Each control plane owns its registry: tests run several in one process.
// istiod's build info and the process collector's CPU, memory and descriptor counts come with it, as they do with
// istiod (its Go client exports process_*), so the control-plane dashboard reads them where there is no cAdvisor.
import { Counter, Gauge, Registry } from 'prom-client';
import { AMBIT_VERSION } from '../common/version.js';
import { registerProcessMetrics } from '../telemetry/process-metrics.js';

export class ControlPlaneMetrics {
  readonly registry = new Registry();
  /** Connected xDS clients. */
  readonly xdsClients = new Gauge({ name: 'pilot_xds', help: 'Number of endpoints connected to this pilot using XDS.', registers: [this.registry] });
  readonly xdsPushes = new Counter({
    name: 'pilot_xds_pushes',
    help: 'xDS responses sent to clients, by type.',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly xdsRejects = new Counter({
    name: 'pilot_total_xds_rejects',
    help: 'Total number of XDS responses from pilot rejected by proxy.',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly xdsAuthFailures = new Counter({
    name: 'pilot_xds_auth_failures',
    help: 'xDS streams refused because their bearer token was missing or unknown.',
    registers: [this.registry],
  });
  readonly csrCount = new Counter({ name: 'citadel_server_csr_count', help: 'The number of CSRs received by Citadel server.', registers: [this.registry] });
  readonly certIssued = new Counter({
    name: 'citadel_server_success_cert_issuance_count',
    help: 'The number of certificates issuances that have succeeded.',
    registers: [this.registry],
  });
  readonly caAuthFailures = new Counter({
    name: 'citadel_server_authentication_failure_count',
    help: 'The number of authentication failures.',
    registers: [this.registry],
  });
  readonly csrErrors = new Counter({
    name: 'citadel_server_csr_parsing_err_count',
    help: 'The number of errors occurred when parsing the CSR.',
    registers: [this.registry],
  });

  constructor() {
    registerProcessMetrics(this.registry);
    const build = new Gauge({ name: 'istio_build', help: 'Istio component build info', labelNames: ['component', 'tag'], registers: [this.registry] });
    build.set({ component: 'pilot', tag: AMBIT_VERSION }, 1);
  }
}
