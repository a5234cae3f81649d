// ztunnel settings: ztunnel's defaults, its environment variable names, flags winning over the environment, and one
// error listing every bad or missing setting.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration } from '../../src/common/settings.js';
import { loadConfig } from '../../src/ztunnel/config.js';

const REQUIRED = { ROOT_CERT: '/r.pem', TOKEN_FILE: '/t', INPOD_UDS: '/z.sock' };

describe('ztunnel config', () => {
  it("uses ztunnel's defaults", () => {
    const c = loadConfig({ nodeName: 'node-1' }, { ...REQUIRED });
    assert.equal(c.poolMaxStreamsPerConnection, 100);
    assert.equal(c.poolUnusedReleaseTimeoutMs, 5 * 60_000);
    assert.equal(c.http2StreamWindowSize, 4 * 1024 * 1024);
    assert.equal(c.http2ConnectionWindowSize, 16 * 1024 * 1024);
    assert.equal(c.http2FrameSize, 1024 * 1024);
    assert.equal(c.secretTtlSeconds, 24 * 3600);
    assert.equal(c.connectionTerminationDeadlineMs, 5000);
    assert.equal(c.packetMark, 0x539);
    assert.equal(c.trustDomain, 'cluster.local');
    assert.equal(c.clusterId, 'Kubernetes');
    assert.equal(c.xdsAddress, 'istiod.istio-system.svc:15012');
    assert.equal(c.caAddress, c.xdsAddress, 'the CA defaults to the xDS address');
    assert.deepEqual([c.outboundPort, c.inboundPlaintextPort, c.inboundPort, c.dnsPort], [15001, 15006, 15008, 15053]);
    assert.deepEqual([c.adminPort, c.metricsPort, c.readinessPort], [15000, 15020, 15021]);
    assert.equal(c.logFormat, 'text');
    assert.equal(c.heapGrowingPercent, 300);
  });

  it("reads ztunnel's environment variables; flags win", () => {
    const c = loadConfig(
      { xdsAddress: '172.18.0.1:15012', logFormat: 'text' },
      {
        ...REQUIRED,
        NODE_NAME: 'node-2',
        XDS_ADDRESS: 'https://ignored:1',
        CA_ADDRESS: 'https://ca.example:15012',
        CLUSTER_DOMAIN: 'example.org',
        SECRET_TTL: '1h30m',
        POOL_MAX_STREAMS_PER_CONNECTION: '50',
        POOL_UNUSED_RELEASE_TIMEOUT: '30s',
        HTTP2_STREAM_WINDOW_SIZE: '1048576',
        HTTP2_CONNECTION_WINDOW_SIZE: '4194304',
        CONNECTION_TERMINATION_DEADLINE: '500ms',
        PACKET_MARK: '0x100',
        LOG_FORMAT: 'json',
        ISTIO_META_DNS_CAPTURE: 'false',
        AMBIT_HEAP_GROWING_PERCENT: '0',
      },
    );
    assert.equal(c.nodeName, 'node-2');
    assert.equal(c.xdsAddress, '172.18.0.1:15012');
    assert.equal(c.caAddress, 'https://ca.example:15012');
    assert.equal(c.trustDomain, 'example.org', 'TRUST_DOMAIN falls back to CLUSTER_DOMAIN');
    assert.equal(c.secretTtlSeconds, 5400);
    assert.equal(c.poolMaxStreamsPerConnection, 50);
    assert.equal(c.poolUnusedReleaseTimeoutMs, 30_000);
    assert.equal(c.http2StreamWindowSize, 1048576);
    assert.equal(c.connectionTerminationDeadlineMs, 500);
    assert.equal(c.packetMark, 0x100);
    assert.equal(c.logFormat, 'text');
    assert.equal(c.dnsCapture, false);
    assert.equal(c.heapGrowingPercent, 0, "0 leaves V8's own setting alone");
  });

  it('drains for TERMINATION_GRACE_PERIOD_SECONDS less a margin, as ztunnel; CONNECTION_TERMINATION_DEADLINE wins', () => {
    const deadline = (env: Record<string, string>) => loadConfig({ nodeName: 'node-1' }, { ...REQUIRED, ...env }).connectionTerminationDeadlineMs;
    assert.equal(deadline({ TERMINATION_GRACE_PERIOD_SECONDS: '30' }), 25_000, 'Istio chart default: 30 s grace, 25 s drain');
    assert.equal(deadline({ TERMINATION_GRACE_PERIOD_SECONDS: '10' }), 9_000, 'short periods keep 1 s for the forced close');
    assert.equal(deadline({ TERMINATION_GRACE_PERIOD_SECONDS: '1' }), 1_000, 'never below 1 s');
    assert.equal(deadline({ TERMINATION_GRACE_PERIOD_SECONDS: '30', CONNECTION_TERMINATION_DEADLINE: '2s' }), 2_000);
    assert.throws(() => deadline({ TERMINATION_GRACE_PERIOD_SECONDS: 'soon' }), /TERMINATION_GRACE_PERIOD_SECONDS/);
  });

  it('refuses a heap growing percent below V8\'s own smallest factor', () => {
    assert.throws(
      () => loadConfig({ nodeName: 'node-1' }, { ...REQUIRED, AMBIT_HEAP_GROWING_PERCENT: '5' }),
      /AMBIT_HEAP_GROWING_PERCENT: expected 0 \(leave V8's setting\) or an integer in \[10, 1000\], got "5"/,
    );
  });

  it('lists every problem in one error', () => {
    assert.throws(
      () => loadConfig({}, { SECRET_TTL: 'soon', HTTP2_STREAM_WINDOW_SIZE: '33554432', XDS_ADDRESS: 'no-port', AMBIT_HEAP_GROWING_PERCENT: 'lots' }),
      (e: Error) => {
        assert.match(e.message, /SECRET_TTL: invalid duration "soon"/);
        assert.match(e.message, /node name missing: pass --node NAME or set NODE_NAME/);
        assert.match(e.message, /--root-cert \(ROOT_CERT\) is required/);
        assert.match(e.message, /XDS_ADDRESS: invalid address "no-port"/);
        assert.match(e.message, /AMBIT_HEAP_GROWING_PERCENT: expected an integer in \[0, 1000\], got "lots"/);
        assert.match(e.message, /HTTP2_CONNECTION_WINDOW_SIZE \(16777216\) must be at least HTTP2_STREAM_WINDOW_SIZE \(33554432\)/);
        return true;
      },
    );
  });

  it('parses durations the way ztunnel writes them', () => {
    assert.equal(parseDuration('24h', 'x'), 86_400_000);
    assert.equal(parseDuration('5m', 'x'), 300_000);
    assert.equal(parseDuration('1.5s', 'x'), 1500);
    assert.equal(parseDuration('10', 'x'), 10_000);
    assert.throws(() => parseDuration('10 parsecs', 'SECRET_TTL'), /SECRET_TTL: invalid duration/);
  });
});
