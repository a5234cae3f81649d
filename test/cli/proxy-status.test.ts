// istioctl proxy-status's tables from the control plane's /debug/syncz (istioctl/pkg/writer/pilot/status.go formats).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { proxyStatusTable, type Syncz } from '../../src/cli/proxy-status.js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION } from '../../src/xds/types.js';

const NOW = Date.parse('2026-01-01T00:10:00Z');
const syncz: Syncz = {
  controlPlane: { identifier: { ID: 'controlplane', info: { version: '0.1.0' } } },
  resources: [
    {
      node: { id: 'ztunnel-node-2.istio-system', metadata: { CLUSTER_ID: 'Kubernetes', ISTIO_VERSION: '0.1.0' } },
      genericXdsConfigs: [
        { typeUrl: TYPE_AUTHORIZATION, configStatus: 'STALE', lastUpdated: '2026-01-01T00:09:30Z' },
        { typeUrl: TYPE_ADDRESS, configStatus: 'ERROR', lastUpdated: '2026-01-01T00:05:00Z', errorState: { details: 'INVALID_ARGUMENT: bad' } },
      ],
    },
    {
      node: { id: 'ztunnel-node-1.istio-system', metadata: { CLUSTER_ID: 'Kubernetes', ISTIO_VERSION: '0.1.0' } },
      genericXdsConfigs: [
        { typeUrl: TYPE_ADDRESS, configStatus: 'SYNCED', lastUpdated: '2026-01-01T00:00:00Z' },
        { typeUrl: TYPE_AUTHORIZATION, configStatus: 'NOT_SENT' },
      ],
    },
  ],
};

describe('proxy-status table (istioctl writer format)', () => {
  it('lists proxies by id with the count and short names of the types they subscribed to', () => {
    assert.equal(
      proxyStatusTable(syncz, 0, NOW),
      [
        'NAME                            CLUSTER        ISTIOD           VERSION     SUBSCRIBED TYPES',
        'ztunnel-node-1.istio-system     Kubernetes     controlplane     0.1.0       2 (WADS,WDS)',
        'ztunnel-node-2.istio-system     Kubernetes     controlplane     0.1.0       2 (WADS,WDS)',
        '',
      ].join('\n'),
    );
  });

  it('verbosity 1: a column per type (Envoy core types included, IGNORED when not subscribed) with status and age', () => {
    const lines = proxyStatusTable(syncz, 1, NOW).split('\n');
    assert.match(lines[0]!, /^NAME +CLUSTER +CDS +ECDS +EDS +LDS +RDS +WADS +WDS +ISTIOD +VERSION$/);
    assert.match(lines[1]!, /^ztunnel-node-1\.istio-system +Kubernetes +IGNORED +IGNORED +IGNORED +IGNORED +IGNORED +NOT SENT +SYNCED \(10m\) +controlplane +0\.1\.0$/);
    assert.match(lines[2]!, / +STALE \(30s\) +ERROR \(5m\) +controlplane/);
  });
});
