// `ambit waypoint`: the Gateway it generates and the tables it prints, compared with istioctl's own goldens
// (istioctl/pkg/waypoint/testdata/waypoint/*) and the output shown in Istio's waypoint guide; the command line itself
// runs as a real process for what needs no cluster.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Gateway } from '../../src/api/types.js';
import {
  makeWaypoint,
  notProgrammedDetail,
  selectForDeletion,
  waypointListTable,
  waypointStatusTable,
  waypointYaml,
} from '../../src/cli/commands/waypoint.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function ambit(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The Gateways istioctl's waypoint_test.go builds: a Programmed condition and nothing else in the status. */
function testGateway(name: string, namespace: string, programmed: boolean, isWaypoint: boolean, labels?: Record<string, string>): Gateway {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace, ...(labels ? { labels } : {}) },
    spec: { gatewayClassName: isWaypoint ? 'istio-waypoint' : 'other', listeners: [] },
    status: { conditions: [{ type: 'Programmed', status: programmed ? 'True' : 'False', reason: '', message: '' }] },
  };
}

// From Istio's "Configure waypoint proxies" guide: `istioctl waypoint generate --for service -n default`.
const GUIDE_GENERATE = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  labels:
    istio.io/waypoint-for: service
  name: waypoint
  namespace: default
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - name: mesh
    port: 15008
    protocol: HBONE
`;

describe('waypoint generate', () => {
  it("prints the guide's Gateway for --for service -n default", () => {
    assert.equal(waypointYaml(makeWaypoint({ name: 'waypoint', namespace: 'default', trafficType: 'service' })), GUIDE_GENERATE);
  });

  it('has no labels without --for or -r, and no namespace without -n', () => {
    assert.equal(
      waypointYaml(makeWaypoint({ name: 'waypoint' })),
      `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - name: mesh
    port: 15008
    protocol: HBONE
`,
    );
  });

  it('labels the revision with -r, sorted with the traffic type; a numeric revision stays a string', () => {
    const yaml = waypointYaml(makeWaypoint({ name: 'reviews-wp', namespace: 'bookinfo', trafficType: 'workload', revision: '1' }));
    assert.match(yaml, /^metadata:\n {2}labels:\n {4}istio\.io\/rev: "1"\n {4}istio\.io\/waypoint-for: workload\n {2}name: reviews-wp\n {2}namespace: bookinfo\n/m);
    const revOnly = makeWaypoint({ name: 'waypoint', revision: 'canary' });
    assert.deepEqual(revOnly.metadata.labels, { 'istio.io/rev': 'canary' });
  });

  it('accepts every traffic type and rejects others, and the reserved name none, with istioctl messages', () => {
    for (const t of ['service', 'workload', 'all', 'none']) assert.equal(makeWaypoint({ name: 'w', trafficType: t }).metadata.labels?.['istio.io/waypoint-for'], t);
    assert.throws(() => makeWaypoint({ name: 'w', trafficType: 'pods' }), {
      message: 'failed to create gateway: invalid traffic type: pods. Valid options are: [all none service workload]',
    });
    assert.throws(() => makeWaypoint({ name: 'none' }), { message: "failed to create gateway: invalid name provided for waypoint, 'none' is a reserved value" });
    assert.equal(makeWaypoint({ name: '' }).metadata.name, 'waypoint');
  });

  it('runs from the command line with the flags wired as istioctl has them', () => {
    const r = ambit(['waypoint', 'generate', '--for', 'service', '-n', 'default']);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, GUIDE_GENERATE);
    const named = ambit(['waypoint', '--name', 'reviews-wp', 'generate', '-r', 'v2']);
    assert.equal(named.status, 0, named.stderr);
    assert.match(named.stdout, /labels:\n {4}istio\.io\/rev: v2\n {2}name: reviews-wp\nspec:/);
    const bad = ambit(['waypoint', 'generate', '--for', 'pods']);
    assert.equal(bad.status, 1);
    assert.equal(bad.stderr, 'error: failed to create gateway: invalid traffic type: pods. Valid options are: [all none service workload]\n');
  });
});

describe('waypoint list (istioctl goldens)', () => {
  it('no-gateway', () => assert.equal(waypointListTable([], false), 'No waypoints found.\n'));

  it('default-gateway', () => {
    assert.equal(
      waypointListTable([testGateway('waypoint', 'default', true, true)], false),
      'NAME         REVISION     TRAFFIC TYPE     PROGRAMMED\nwaypoint     default      none             True\n',
    );
  });

  it('all-gateway', () => {
    const gws = [testGateway('waypoint', 'fake', true, true), testGateway('waypoint', 'default', true, true)];
    assert.equal(
      waypointListTable(gws, true),
      'NAMESPACE     NAME         REVISION     TRAFFIC TYPE     PROGRAMMED\ndefault       waypoint     default      none             True\nfake          waypoint     default      none             True\n',
    );
  });

  it('combined-gateway: only the waypoint class, sorted by namespace and name, with revision and traffic type', () => {
    const gws = [
      testGateway('bookinfo', 'default', false, true),
      testGateway('bookinfo-invalid', 'fake', true, false),
      testGateway('waypoint', 'default', false, true),
      testGateway('bookinfo-valid', 'bookinfo', true, true),
      testGateway('no-name-convention', 'default', true, true),
      testGateway('bookinfo-rev', 'bookinfo', true, true, { 'istio.io/rev': 'rev1' }),
      testGateway('bookinfo-traffic-type', 'bookinfo', true, true, { 'istio.io/waypoint-for': 'all' }),
    ];
    assert.equal(
      waypointListTable(gws, true),
      'NAMESPACE     NAME                      REVISION     TRAFFIC TYPE     PROGRAMMED\n' +
        'bookinfo      bookinfo-rev              rev1         none             True\n' +
        'bookinfo      bookinfo-traffic-type     default      all              True\n' +
        'bookinfo      bookinfo-valid            default      none             True\n' +
        'default       bookinfo                  default      none             False\n' +
        'default       no-name-convention        default      none             True\n' +
        'default       waypoint                  default      none             False\n',
    );
  });

  it('shows PROGRAMMED False before the control plane has written any status, and no waypoints among other Gateways', () => {
    const { status: _none, ...unreported } = testGateway('waypoint', 'default', true, true);
    assert.match(waypointListTable([unreported], false), /\nwaypoint {5}default {6}none {13}False\n$/);
    assert.equal(waypointListTable([testGateway('ingress', 'default', true, false)], false), 'No waypoints found.\n');
  });
});

describe('waypoint status (istioctl goldens)', () => {
  it('waypoint-status-ready', () => {
    assert.equal(
      waypointStatusTable([testGateway('waypoint', 'default', true, true)], false),
      'NAME         STATUS     TYPE           REASON     MESSAGE\nwaypoint     True       Programmed                \n',
    );
  });

  it('waypoint-status-notready (--wait=false)', () => {
    assert.equal(
      waypointStatusTable([testGateway('waypoint', 'default', false, true)], false),
      'NAME         STATUS     TYPE           REASON     MESSAGE\nwaypoint     False      Programmed                \n',
    );
  });

  it('waypoint-status-all', () => {
    const gws = ['fake3', 'fake1', 'fake2'].map((ns) => testGateway('waypoint', ns, true, true));
    assert.equal(
      waypointStatusTable(gws, true),
      'NAMESPACE     NAME         STATUS     TYPE           REASON     MESSAGE\n' +
        'fake1         waypoint     True       Programmed                \n' +
        'fake2         waypoint     True       Programmed                \n' +
        'fake3         waypoint     True       Programmed                \n',
    );
  });

  it("shows the control plane's Programmed reason and message, not the other conditions", () => {
    const gw = testGateway('waypoint', 'orders', false, true);
    const message = 'Failed to assign to any requested addresses: hostname "waypoint.orders.svc.cluster.local" not found';
    gw.status = {
      conditions: [
        { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Resource accepted' },
        { type: 'Programmed', status: 'False', reason: 'AddressNotUsable', message },
        { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'All references resolved' },
      ],
    };
    assert.equal(
      waypointStatusTable([gw], false),
      `NAME         STATUS     TYPE           REASON               MESSAGE\nwaypoint     False      Programmed     AddressNotUsable     ${message}\n`,
    );
    assert.equal(notProgrammedDetail(gw), `Programmed=False, reason AddressNotUsable: ${message}`);
  });

  it('says why a waypoint is not ready when waiting times out', () => {
    const { status: _none, ...unreported } = testGateway('waypoint', 'default', false, true);
    assert.equal(notProgrammedDetail(unreported), 'no Programmed condition yet: the control plane has not reported on this Gateway');
    assert.equal(notProgrammedDetail(undefined), 'the Gateway no longer exists');
    // Every cell but the last padded to its column: NAME 8+5, STATUS 6+5, TYPE 4+5, REASON 6+5.
    assert.equal(waypointStatusTable([unreported], false), `NAME         STATUS     TYPE     REASON     MESSAGE\n${'waypoint'.padEnd(13 + 11 + 9 + 11)}\n`);
  });
});

describe('waypoint delete', () => {
  const gws = [
    testGateway('waypoint', 'default', true, true),
    testGateway('canary', 'default', true, true, { 'istio.io/rev': 'v2' }),
    testGateway('ingress', 'default', true, false),
  ];

  it('deletes named waypoints and reports names that are not waypoints as not found', () => {
    assert.deepEqual(selectForDeletion(gws, { names: ['canary', 'ingress', 'nope'], all: false }), { names: ['canary'], missing: ['ingress', 'nope'] });
  });

  it('--all takes every waypoint of the namespace, -r only those of that revision', () => {
    assert.deepEqual(selectForDeletion(gws, { names: [], all: true }), { names: ['canary', 'waypoint'], missing: [] });
    assert.deepEqual(selectForDeletion(gws, { names: [], all: false, revision: 'v2' }), { names: ['canary'], missing: [] });
    assert.deepEqual(selectForDeletion(gws, { names: [], all: true, revision: 'v3' }), { names: [], missing: [] });
  });

  it('refuses names together with --all or -r, and neither, before reaching a cluster', () => {
    const both = ambit(['waypoint', 'delete', 'waypoint', '--all']);
    assert.equal(both.status, 1);
    assert.equal(both.stderr, 'error: cannot specify waypoint names when deleting all waypoints\n');
    const neither = ambit(['waypoint', 'delete']);
    assert.equal(neither.stderr, 'error: must specify a waypoint name or delete all using --all or delete specific revision using --revision\n');
  });
});

describe('waypoint flags', () => {
  it('names the cluster that is not running, and checks --wait and --waypoint-timeout before connecting', () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ambit-waypoint-test-'));
    try {
      const env = { AMBIT_STATE_DIR: stateDir };
      const list = ambit(['waypoint', 'list', '--cluster', 'wp-absent'], env);
      assert.equal(list.status, 1);
      assert.match(list.stderr, /^error: cluster "wp-absent" is not running/);
      const timeout = ambit(['waypoint', 'status', '--waypoint-timeout', 'soon', '--cluster', 'wp-absent'], env);
      assert.match(timeout.stderr, /^error: --waypoint-timeout: invalid duration "soon"/);
      // istioctl's --wait=false form is accepted (the command then fails only for want of a cluster).
      assert.match(ambit(['waypoint', 'status', '--wait=false', '--cluster', 'wp-absent'], env).stderr, /^error: cluster "wp-absent" is not running/);
      assert.match(ambit(['waypoint', 'apply', '-w', 'maybe', '--cluster', 'wp-absent'], env).stderr, /^error: --wait: expected true or false, got "maybe"/);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it('lists each subcommand on one line in --help', () => {
    const help = ambit(['waypoint', '--help']).stdout;
    for (const line of [
      /^ {2}generate \[options\] +Generate a waypoint configuration$/m,
      /^ {2}apply \[options\] +Apply a waypoint configuration$/m,
      /^ {2}list \[options\] +List managed waypoint configurations$/m,
      /^ {2}status \[options\] +Show the status of waypoints$/m,
      /^ {2}delete \[options\] \[names\.\.\.\] +Delete a waypoint configuration$/m,
    ]) {
      assert.match(help, line);
    }
  });
});
