// The API server's Tables against what kubectl prints from a real kube-apiserver: each printer's columns and cells for
// realistic objects (rendered the way kubectl renders a Table), the pod STATUS algorithm's cases, CRD printer columns,
// the generic table, and the Table envelope (includeObject, resourceVersion, watch events).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RESOURCE_TYPES, type ResourceType } from '../../src/api/kinds.js';
import { toEventTable, toTable, type Table } from '../../src/apiserver/tables.js';
import { table as tabwriter } from '../../src/local/format.js';

const NOW = Date.parse('2025-06-01T12:00:00Z');
const ago = (ms: number) => new Date(NOW - ms).toISOString().replace('.000Z', 'Z');
const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

function type(group: string, kind: string): ResourceType {
  const t = RESOURCE_TYPES.find((r) => r.group === group && r.kind === kind);
  assert.ok(t, `${group}/${kind} is in the registry`);
  return t;
}

function tableOf(group: string, kind: string, objects: object[]): Table {
  return toTable(type(group, kind), objects, { includeObject: 'Metadata', now: NOW });
}

/** kubectl's rendering of a Table: upper-cased headers, wide columns only with -o wide, null as an empty cell. */
function kubectl(t: Table, wide = false): string {
  const shown = t.columnDefinitions!.map((c, i) => [c, i] as const).filter(([c]) => wide || c.priority === 0);
  return tabwriter(
    shown.map(([c]) => c.name.toUpperCase()),
    t.rows.map((r) => shown.map(([, i]) => (r.cells[i] === null ? '' : String(r.cells[i])))),
  );
}

const lines = (...l: string[]) => [...l, ''].join('\n');

// ---- pods -----------------------------------------------------------------------------------------------------------------

interface PodOptions {
  containers?: string[];
  initContainers?: { name: string; restartPolicy?: string }[];
  status?: Record<string, unknown>;
  deletionTimestamp?: string;
  readinessGates?: string[];
}

function pod(name: string, o: PodOptions = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', uid: `uid-${name}`, resourceVersion: '42', creationTimestamp: ago(10 * M), ...(o.deletionTimestamp ? { deletionTimestamp: o.deletionTimestamp } : {}) },
    spec: {
      nodeName: 'node-1',
      containers: (o.containers ?? ['app']).map((n) => ({ name: n, image: `example/${n}:1` })),
      ...(o.initContainers ? { initContainers: o.initContainers.map((c) => ({ image: 'example/init:1', ...c })) } : {}),
      ...(o.readinessGates ? { readinessGates: o.readinessGates.map((conditionType) => ({ conditionType })) } : {}),
    },
    status: o.status ?? {},
  };
}

const running = (name: string, ready = true, extra: Record<string, unknown> = {}) => ({ name, ready, started: true, restartCount: 0, state: { running: { startedAt: ago(9 * M) } }, ...extra });
const waiting = (name: string, reason: string, extra: Record<string, unknown> = {}) => ({ name, ready: false, started: false, restartCount: 0, state: { waiting: { reason } }, ...extra });
const terminated = (name: string, t: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ name, ready: false, started: false, restartCount: 0, state: { terminated: { finishedAt: ago(M), ...t } }, ...extra });
const cond = (type: string, status: string, reason?: string) => ({ type, status, ...(reason ? { reason } : {}) });
const readyConditions = (ready: boolean) => [cond('PodScheduled', 'True'), cond('Initialized', 'True'), cond('ContainersReady', ready ? 'True' : 'False'), cond('Ready', ready ? 'True' : 'False')];

/** The non-wide cells after NAME: READY, STATUS, RESTARTS, AGE. */
function podRow(p: object): unknown[] {
  return tableOf('', 'Pod', [p]).rows[0]!.cells.slice(1, 5);
}

describe('pods', () => {
  it('columns: kube-apiserver\'s names, types and priorities', () => {
    const t = tableOf('', 'Pod', []);
    assert.deepEqual(
      t.columnDefinitions!.map((c) => [c.name, c.type, c.format, c.priority]),
      [
        ['Name', 'string', 'name', 0],
        ['Ready', 'string', '', 0],
        ['Status', 'string', '', 0],
        ['Restarts', 'string', '', 0],
        ['Age', 'string', '', 0],
        ['IP', 'string', '', 1],
        ['Node', 'string', '', 1],
        ['Nominated Node', 'string', '', 1],
        ['Readiness Gates', 'string', '', 1],
      ],
    );
    assert.ok(t.columnDefinitions!.every((c) => c.description.length > 0));
    assert.deepEqual(t.rows, []);
  });

  it('a running pod as the local cluster publishes it, plain and wide', () => {
    // The status fields publishPodStatus writes (src/local/cluster.ts).
    const web = pod('web', {
      containers: ['app', 'istio-proxy'],
      status: {
        phase: 'Running',
        hostIP: '172.18.0.2',
        hostIPs: [{ ip: '172.18.0.2' }],
        podIP: '10.244.1.5',
        podIPs: [{ ip: '10.244.1.5' }],
        startTime: ago(9 * M),
        conditions: readyConditions(true),
        containerStatuses: [running('app'), running('istio-proxy')],
        netnsPath: '/run/ambit/netns/x',
      },
    });
    const t = tableOf('', 'Pod', [web]);
    assert.equal(kubectl(t), lines('NAME   READY   STATUS    RESTARTS   AGE', 'web    2/2     Running   0          10m'));
    assert.equal(
      kubectl(t, true),
      lines(
        'NAME   READY   STATUS    RESTARTS   AGE   IP           NODE     NOMINATED NODE   READINESS GATES',
        'web    2/2     Running   0          10m   10.244.1.5   node-1   <none>           <none>',
      ),
    );
    assert.equal(t.rows[0]!.conditions, undefined);
  });

  it('CrashLoopBackOff: the waiting reason, restarts with the age of the last termination', () => {
    const p = pod('crash', {
      status: {
        phase: 'Running',
        conditions: readyConditions(false),
        containerStatuses: [waiting('app', 'CrashLoopBackOff', { restartCount: 5, lastState: { terminated: { exitCode: 1, reason: 'Error', finishedAt: ago(40 * S) } } })],
      },
    });
    assert.deepEqual(podRow(p), ['0/1', 'CrashLoopBackOff', '5 (40s ago)', '10m']);
  });

  it('the most recent termination of any container dates RESTARTS', () => {
    const p = pod('two', {
      containers: ['a', 'b'],
      status: {
        phase: 'Running',
        conditions: readyConditions(true),
        containerStatuses: [
          running('a', true, { restartCount: 2, lastState: { terminated: { exitCode: 137, reason: 'OOMKilled', finishedAt: ago(3 * M + 20 * S) } } }),
          running('b', true, { restartCount: 1, lastState: { terminated: { exitCode: 1, finishedAt: ago(7 * H) } } }),
        ],
      },
    });
    assert.deepEqual(podRow(p), ['2/2', 'Running', '3 (3m20s ago)', '10m']);
  });

  it('init containers: Init:i/n while one runs, Init:<reason> when one fails or waits', () => {
    const init = [{ name: 'migrate' }, { name: 'seed' }];
    const initializing = (seed: object) => pod('init', {
      initContainers: init,
      status: {
        phase: 'Pending',
        conditions: [cond('PodScheduled', 'True'), cond('Initialized', 'False', 'ContainersNotInitialized'), cond('Ready', 'False')],
        initContainerStatuses: [terminated('migrate', { exitCode: 0, reason: 'Completed' }), seed],
        containerStatuses: [waiting('app', 'PodInitializing')],
      },
    });
    assert.deepEqual(podRow(initializing(running('seed', false))), ['0/1', 'Init:1/2', '0', '10m']);
    assert.deepEqual(podRow(initializing(waiting('seed', 'PodInitializing'))), ['0/1', 'Init:1/2', '0', '10m']);
    assert.deepEqual(
      podRow(initializing(waiting('seed', 'CrashLoopBackOff', { restartCount: 3, lastState: { terminated: { exitCode: 1, finishedAt: ago(2 * M) } } }))),
      ['0/1', 'Init:CrashLoopBackOff', '3 (2m ago)', '10m'],
    );
    assert.deepEqual(podRow(initializing(terminated('seed', { exitCode: 1, reason: 'Error' }))), ['0/1', 'Init:Error', '0', '10m']);
    assert.deepEqual(podRow(initializing(terminated('seed', { exitCode: 3 }))), ['0/1', 'Init:ExitCode:3', '0', '10m']);
    assert.deepEqual(podRow(initializing(terminated('seed', { exitCode: 137, signal: 9 }))), ['0/1', 'Init:Signal:9', '0', '10m']);
  });

  it('after initialization, restarts of ordinary init containers no longer count', () => {
    const p = pod('inited', {
      initContainers: [{ name: 'migrate' }],
      status: {
        phase: 'Running',
        conditions: readyConditions(true),
        initContainerStatuses: [terminated('migrate', { exitCode: 0, reason: 'Completed' }, { restartCount: 4, lastState: { terminated: { exitCode: 1, finishedAt: ago(8 * M) } } })],
        containerStatuses: [running('app')],
      },
    });
    assert.deepEqual(podRow(p), ['1/1', 'Running', '0', '10m']);
  });

  it('sidecars (restartPolicy Always) count in READY and RESTARTS; a job pod whose sidecar still runs shows Completed', () => {
    const sidecar = [{ name: 'istio-proxy', restartPolicy: 'Always' }];
    const job = pod('job', {
      containers: ['job'],
      initContainers: sidecar,
      status: {
        phase: 'Running',
        conditions: readyConditions(false),
        initContainerStatuses: [running('istio-proxy', true, { restartCount: 1, lastState: { terminated: { exitCode: 0, finishedAt: ago(5 * M) } } })],
        containerStatuses: [terminated('job', { exitCode: 0, reason: 'Completed' })],
      },
    });
    assert.deepEqual(podRow(job), ['1/2', 'Completed', '1 (5m ago)', '10m']);

    // A sidecar not started yet holds initialization like any init container.
    const starting = pod('starting', {
      initContainers: sidecar,
      status: { phase: 'Pending', conditions: [cond('Initialized', 'False')], initContainerStatuses: [running('istio-proxy', false, { started: false })], containerStatuses: [waiting('app', 'PodInitializing')] },
    });
    assert.deepEqual(podRow(starting), ['0/2', 'Init:0/1', '0', '10m']);
  });

  it('a container that completed beside a running one: Running when the pod is Ready, NotReady otherwise', () => {
    const mixed = (ready: boolean) => pod('mixed', {
      containers: ['server', 'setup'],
      status: { phase: 'Running', conditions: readyConditions(ready), containerStatuses: [running('server'), terminated('setup', { exitCode: 0, reason: 'Completed' })] },
    });
    assert.deepEqual(podRow(mixed(true)), ['1/2', 'Running', '0', '10m']);
    assert.deepEqual(podRow(mixed(false)), ['1/2', 'NotReady', '0', '10m']);
  });

  it('containers are scanned last to first: the first container\'s state wins', () => {
    const p = pod('scan', {
      containers: ['a', 'b'],
      status: { phase: 'Running', containerStatuses: [waiting('a', 'ImagePullBackOff'), terminated('b', { exitCode: 2 })] },
    });
    assert.deepEqual(podRow(p), ['0/2', 'ImagePullBackOff', '0', '10m']);
    const q = pod('scan2', { containers: ['a', 'b'], status: { phase: 'Running', containerStatuses: [terminated('a', { exitCode: 143, signal: 15 }), running('b')] } });
    assert.deepEqual(podRow(q), ['1/2', 'Signal:15', '0', '10m']);
  });

  it('finished pods: Completed or Error, and the Completed row condition kube sets', () => {
    const done = pod('done', { status: { phase: 'Succeeded', containerStatuses: [terminated('app', { exitCode: 0, reason: 'Completed' })] } });
    const failed = pod('failed', { status: { phase: 'Failed', containerStatuses: [terminated('app', { exitCode: 1, reason: 'Error' })] } });
    const t = tableOf('', 'Pod', [done, failed]);
    assert.deepEqual(t.rows.map((r) => r.cells.slice(1, 3)), [['0/1', 'Completed'], ['0/1', 'Error']]);
    assert.deepEqual(t.rows.map((r) => [r.conditions?.[0]?.type, r.conditions?.[0]?.status, r.conditions?.[0]?.reason]), [['Completed', 'True', 'Succeeded'], ['Completed', 'True', 'Failed']]);
  });

  it('Terminating while deleted and not finished; Unknown on a lost node; a finished pod keeps its status', () => {
    const deleted = ago(5 * S);
    const status = { phase: 'Running', conditions: readyConditions(true), containerStatuses: [running('app')] };
    assert.deepEqual(podRow(pod('t', { deletionTimestamp: deleted, status })), ['1/1', 'Terminating', '0', '10m']);
    assert.deepEqual(podRow(pod('lost', { deletionTimestamp: deleted, status: { ...status, reason: 'NodeLost' } })), ['1/1', 'Unknown', '0', '10m']);
    const done = { phase: 'Succeeded', containerStatuses: [terminated('app', { exitCode: 0, reason: 'Completed' })] };
    assert.deepEqual(podRow(pod('gone', { deletionTimestamp: deleted, status: done })), ['0/1', 'Completed', '0', '10m']);
  });

  it('pending pods: the phase, status.reason, SchedulingGated, ContainerCreating', () => {
    assert.deepEqual(podRow(pod('new', { status: { phase: 'Pending' } })), ['0/1', 'Pending', '0', '10m']);
    assert.deepEqual(podRow(pod('evicted', { status: { phase: 'Failed', reason: 'Evicted' } })), ['0/1', 'Evicted', '0', '10m']);
    const gated = pod('gated', { status: { phase: 'Pending', conditions: [cond('PodScheduled', 'False', 'SchedulingGated')] } });
    assert.deepEqual(podRow(gated), ['0/1', 'SchedulingGated', '0', '10m']);
    assert.deepEqual(podRow(pod('creating', { status: { phase: 'Pending', containerStatuses: [waiting('app', 'ContainerCreating')] } })), ['0/1', 'ContainerCreating', '0', '10m']);
  });

  it('wide: <none> placeholders, the nominated node, readiness gates true/total', () => {
    const p = pod('gates', {
      readinessGates: ['example.com/lb', 'example.com/dns'],
      status: { phase: 'Pending', nominatedNodeName: 'node-2', conditions: [cond('example.com/lb', 'True'), cond('example.com/dns', 'False')] },
    });
    (p as { spec: { nodeName?: string } }).spec.nodeName = undefined;
    assert.deepEqual(tableOf('', 'Pod', [p]).rows[0]!.cells.slice(5), ['<none>', '<none>', 'node-2', '1/2']);
  });
});

// ---- nodes ----------------------------------------------------------------------------------------------------------------

describe('nodes', () => {
  const node = (name: string, labels: Record<string, string>, status: Record<string, unknown>, spec: Record<string, unknown> = {}) => ({
    apiVersion: 'v1', kind: 'Node', metadata: { name, labels, creationTimestamp: ago(3 * D + 4 * H) }, spec, status,
  });
  const info = { kubeletVersion: 'v1.31.0', osImage: 'Debian GNU/Linux 12 (bookworm)', kernelVersion: '6.8.0-45-generic', containerRuntimeVersion: 'containerd://1.7.18' };
  const addresses = [{ type: 'InternalIP', address: '172.18.0.2' }, { type: 'Hostname', address: 'cp' }];

  it('STATUS from the Ready condition plus SchedulingDisabled; ROLES from labels; wide system info', () => {
    const t = tableOf('', 'Node', [
      node('cp', { 'node-role.kubernetes.io/control-plane': '', 'kubernetes.io/hostname': 'cp' }, { conditions: [cond('MemoryPressure', 'False'), cond('Ready', 'True')], addresses, nodeInfo: info }),
      node('worker', { 'kubernetes.io/role': 'worker', 'node-role.kubernetes.io/ingress': '' }, { conditions: [cond('Ready', 'False')], addresses: [{ type: 'ExternalIP', address: '203.0.113.7' }], nodeInfo: info }, { unschedulable: true }),
      node('fresh', {}, {}),
    ]);
    assert.equal(
      kubectl(t),
      lines(
        'NAME     STATUS                        ROLES            AGE    VERSION',
        'cp       Ready                         control-plane    3d4h   v1.31.0',
        'worker   NotReady,SchedulingDisabled   ingress,worker   3d4h   v1.31.0',
        'fresh    Unknown                       <none>           3d4h',
      ),
    );
    assert.deepEqual(t.rows.map((r) => r.cells.slice(5)), [
      ['172.18.0.2', '<none>', 'Debian GNU/Linux 12 (bookworm)', '6.8.0-45-generic', 'containerd://1.7.18'],
      ['<none>', '203.0.113.7', 'Debian GNU/Linux 12 (bookworm)', '6.8.0-45-generic', 'containerd://1.7.18'],
      ['<none>', '<none>', '<unknown>', '<unknown>', '<unknown>'],
    ]);
    assert.deepEqual(t.columnDefinitions!.filter((c) => c.priority === 1).map((c) => c.name), ['Internal-IP', 'External-IP', 'OS-Image', 'Kernel-Version', 'Container-Runtime']);
  });
});

// ---- services -------------------------------------------------------------------------------------------------------------

describe('services', () => {
  const svc = (name: string, spec: Record<string, unknown>, status: Record<string, unknown> = {}) => ({
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop', creationTimestamp: ago(25 * M) }, spec, status,
  });

  it('TYPE, CLUSTER-IP, EXTERNAL-IP and PORT(S) for each service type; wide SELECTOR', () => {
    const t = tableOf('', 'Service', [
      svc('kube-dns', { type: 'ClusterIP', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], selector: { 'k8s-app': 'kube-dns' }, ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }, { name: 'metrics', port: 9153, protocol: 'TCP' }] }),
      svc('web', { type: 'NodePort', clusterIP: '10.96.4.2', clusterIPs: ['10.96.4.2'], selector: { tier: 'front', app: 'web' }, ports: [{ port: 80, nodePort: 30080, protocol: 'TCP' }] }),
      svc('lb', { type: 'LoadBalancer', clusterIP: '10.96.7.7', clusterIPs: ['10.96.7.7'], ports: [{ port: 443, nodePort: 31443, protocol: 'TCP' }] }),
      svc('lb-up', { type: 'LoadBalancer', clusterIP: '10.96.7.8', clusterIPs: ['10.96.7.8'], externalIPs: ['198.51.100.9'], ports: [{ port: 443, nodePort: 31444, protocol: 'TCP' }] }, { loadBalancer: { ingress: [{ ip: '203.0.113.20' }, { hostname: 'lb.example.com' }, { ip: '203.0.113.10' }] } }),
      svc('db', { type: 'ClusterIP', clusterIP: 'None', clusterIPs: ['None'], selector: { app: 'db' }, ports: [{ port: 5432 }] }),
      svc('ext', { type: 'ExternalName', externalName: 'api.example.com' }),
      svc('bare', { clusterIP: '10.96.9.9', externalIPs: ['198.51.100.1', '198.51.100.2'], ports: [{ port: 8080 }] }),
    ]);
    assert.equal(
      kubectl(t, true),
      lines(
        'NAME       TYPE           CLUSTER-IP   EXTERNAL-IP                                             PORT(S)                  AGE   SELECTOR',
        'kube-dns   ClusterIP      10.96.0.10   <none>                                                  53/UDP,53/TCP,9153/TCP   25m   k8s-app=kube-dns',
        'web        NodePort       10.96.4.2    <none>                                                  80:30080/TCP             25m   app=web,tier=front',
        'lb         LoadBalancer   10.96.7.7    <pending>                                               443:31443/TCP            25m   <none>',
        'lb-up      LoadBalancer   10.96.7.8    203.0.113.10,203.0.113.20,lb.example.com,198.51.100.9   443:31444/TCP            25m   <none>',
        'db         ClusterIP      None         <none>                                                  5432/TCP                 25m   app=db',
        'ext        ExternalName   <none>       api.example.com                                         <none>                   25m   <none>',
        'bare       ClusterIP      10.96.9.9    198.51.100.1,198.51.100.2                               8080/TCP                 25m   <none>',
      ),
    );
  });
});

// ---- workloads ------------------------------------------------------------------------------------------------------------

describe('deployments and daemon sets', () => {
  const template = { metadata: { labels: { app: 'web' } }, spec: { nodeSelector: { 'kubernetes.io/os': 'linux' }, containers: [{ name: 'app', image: 'example/web:2' }, { name: 'log', image: 'example/log:1' }] } };

  it('deployments: READY ready/desired, UP-TO-DATE and AVAILABLE as integers; wide CONTAINERS, IMAGES, SELECTOR', () => {
    const t = tableOf('apps', 'Deployment', [
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop', creationTimestamp: ago(5 * H + 10 * M) }, spec: { replicas: 3, selector: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'track', operator: 'NotIn', values: ['canary', 'beta'] }, { key: 'zone', operator: 'Exists' }] }, template }, status: { replicas: 3, readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2 } },
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'new', namespace: 'shop', creationTimestamp: ago(45 * S) }, spec: { selector: { matchLabels: { app: 'new' } }, template: { spec: { containers: [{ name: 'app', image: 'example/new:1' }] } } } },
    ]);
    assert.deepEqual(t.rows[0]!.cells, ['web', '2/3', 3, 2, '5h10m', 'app,log', 'example/web:2,example/log:1', 'app=web,track notin (beta,canary),zone']);
    assert.deepEqual(t.rows[1]!.cells, ['new', '0/1', 0, 0, '45s', 'app', 'example/new:1', 'app=new']);
    assert.equal(kubectl(t), lines('NAME   READY   UP-TO-DATE   AVAILABLE   AGE', 'web    2/3     3            2           5h10m', 'new    0/1     0            0           45s'));
  });

  it('daemon sets: the scheduling counts, NODE SELECTOR before AGE; wide SELECTOR (<none> when empty)', () => {
    const t = tableOf('apps', 'DaemonSet', [
      { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'ztunnel', namespace: 'istio-system', creationTimestamp: ago(2 * D) }, spec: { selector: { matchLabels: { app: 'ztunnel' } }, template }, status: { desiredNumberScheduled: 3, currentNumberScheduled: 3, numberReady: 2, updatedNumberScheduled: 3, numberAvailable: 2 } },
      { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'odd', namespace: 'istio-system', creationTimestamp: ago(2 * D) }, spec: { selector: {}, template: { spec: { containers: [] } } } },
    ]);
    assert.equal(
      kubectl(t, true),
      lines(
        'NAME      DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR            AGE   CONTAINERS   IMAGES                        SELECTOR',
        'ztunnel   3         3         2       3            2           kubernetes.io/os=linux   2d    app,log      example/web:2,example/log:1   app=ztunnel',
        'odd       0         0         0       0            0           <none>                   2d                                               <none>',
      ),
    );
    assert.deepEqual(t.columnDefinitions!.slice(1, 6).map((c) => c.type), ['integer', 'integer', 'integer', 'integer', 'integer']);
  });

  it('an invalid selector: <invalid> for deployments, <error> for daemon sets, as kube\'s two selector formatters print it', () => {
    const selector = { matchExpressions: [{ key: 'track', operator: 'In', values: [] }] };
    const d = tableOf('apps', 'Deployment', [{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { selector, template } }]);
    assert.equal(d.rows[0]!.cells[7], '<invalid>');
    const ds = tableOf('apps', 'DaemonSet', [{ apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'ds' }, spec: { selector: { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] }, template } }]);
    assert.equal(ds.rows[0]!.cells[10], '<error>');
    assert.equal(d.rows[0]!.cells[4], '<unknown>'); // no creationTimestamp
  });
});

// ---- the small core kinds -------------------------------------------------------------------------------------------------

describe('namespaces, service accounts, config maps, secrets, leases, endpoint slices', () => {
  const meta = (name: string, namespace?: string) => ({ name, ...(namespace ? { namespace } : {}), creationTimestamp: ago(8 * D + 5 * H) });

  it('namespaces: STATUS is status.phase', () => {
    const t = tableOf('', 'Namespace', [
      { apiVersion: 'v1', kind: 'Namespace', metadata: meta('shop'), status: { phase: 'Active' } },
      { apiVersion: 'v1', kind: 'Namespace', metadata: meta('old'), status: { phase: 'Terminating' } },
    ]);
    assert.equal(kubectl(t), lines('NAME   STATUS        AGE', 'shop   Active        8d', 'old    Terminating   8d'));
  });

  it('service accounts, config maps and secrets count their entries', () => {
    assert.deepEqual(tableOf('', 'ServiceAccount', [{ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta('default', 'shop') }]).rows[0]!.cells, ['default', 0, '8d']);
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta('istio', 'istio-system'), data: { mesh: '{}', meshNetworks: '{}' }, binaryData: { logo: 'iVBO' } };
    assert.deepEqual(tableOf('', 'ConfigMap', [cm]).rows[0]!.cells, ['istio', 3, '8d']);
    const t = tableOf('', 'Secret', [
      { apiVersion: 'v1', kind: 'Secret', metadata: meta('tls', 'shop'), type: 'kubernetes.io/tls', data: { 'tls.crt': 'LS0t', 'tls.key': 'LS0t' } },
      { apiVersion: 'v1', kind: 'Secret', metadata: meta('empty', 'shop') },
    ]);
    assert.equal(kubectl(t), lines('NAME    TYPE                DATA   AGE', 'tls     kubernetes.io/tls   2      8d', 'empty   Opaque              0      8d'));
  });

  it('leases: HOLDER', () => {
    const t = tableOf('coordination.k8s.io', 'Lease', [
      { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: meta('node-1', 'kube-node-lease'), spec: { holderIdentity: 'node-1', leaseDurationSeconds: 40 } },
      { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: meta('free', 'kube-node-lease'), spec: {} },
    ]);
    assert.equal(kubectl(t), lines('NAME     HOLDER   AGE', 'node-1   node-1   8d', 'free              8d'));
  });

  it('endpoint slices: ADDRESSTYPE, the first three ports and addresses then "+ N more...", <unset> for none', () => {
    const slice = (name: string, ports: object[], endpoints: object[]) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: meta(name, 'shop'), addressType: 'IPv4', ports, endpoints });
    const t = tableOf('discovery.k8s.io', 'EndpointSlice', [
      slice('web-abc12', [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'https', port: 443, protocol: 'TCP' }], [{ addresses: ['10.244.1.5'] }, { addresses: ['10.244.2.7'] }]),
      slice('big-x', [{ port: 1 }, { port: 2 }, { name: 'named' }, { port: 4 }, {}], [{ addresses: ['10.0.0.1', '10.0.0.2'] }, { addresses: ['10.0.0.3'] }, { addresses: ['10.0.0.4'] }, { addresses: ['10.0.0.5'] }]),
      slice('empty-y', [], []),
    ]);
    assert.equal(
      kubectl(t),
      lines(
        'NAME        ADDRESSTYPE   PORTS                   ENDPOINTS                                AGE',
        'web-abc12   IPv4          80,443                  10.244.1.5,10.244.2.7                    8d',
        'big-x       IPv4          1,2,named + 2 more...   10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...   8d',
        'empty-y     IPv4          <unset>                 <unset>                                  8d',
      ),
    );
  });
});

// ---- events ---------------------------------------------------------------------------------------------------------------

describe('events', () => {
  it('LAST SEEN TYPE REASON OBJECT MESSAGE, and the wide SUBOBJECT SOURCE … FIRST SEEN COUNT NAME', () => {
    const t = tableOf('', 'Event', [
      {
        apiVersion: 'v1', kind: 'Event', metadata: { name: 'web.17f1', namespace: 'shop', creationTimestamp: ago(10 * M) },
        involvedObject: { kind: 'Pod', name: 'web', namespace: 'shop', fieldPath: 'spec.containers{app}' },
        reason: 'BackOff', message: 'Back-off restarting failed container app\n', type: 'Warning',
        source: { component: 'kubelet', host: 'node-1' }, firstTimestamp: ago(10 * M), lastTimestamp: ago(30 * S), count: 12,
      },
      {
        apiVersion: 'v1', kind: 'Event', metadata: { name: 'web.17f2', namespace: 'shop', creationTimestamp: ago(4 * M) },
        involvedObject: { kind: 'Deployment', name: 'web' }, reason: 'ScalingReplicaSet', message: 'Scaled up replica set web-5d4 to 3', type: 'Normal',
        reportingComponent: 'deployment-controller', eventTime: ago(4 * M), series: { count: 2, lastObservedTime: ago(2 * M) },
      },
      {
        apiVersion: 'v1', kind: 'Event', metadata: { name: 'node.1', creationTimestamp: ago(M) },
        involvedObject: { kind: 'Node' }, reason: 'Starting', message: 'Starting kubelet.', type: 'Normal', source: { component: 'kubelet' }, firstTimestamp: ago(M),
      },
    ]);
    assert.deepEqual(t.columnDefinitions!.map((c) => [c.name, c.priority]), [
      ['Last Seen', 0], ['Type', 0], ['Reason', 0], ['Object', 0], ['Subobject', 1], ['Source', 1], ['Message', 0], ['First Seen', 1], ['Count', 1], ['Name', 1],
    ]);
    assert.equal(t.columnDefinitions![9]!.format, 'name');
    assert.equal(
      kubectl(t),
      lines(
        'LAST SEEN   TYPE      REASON              OBJECT           MESSAGE',
        '30s         Warning   BackOff             pod/web          Back-off restarting failed container app',
        '2m          Normal    ScalingReplicaSet   deployment/web   Scaled up replica set web-5d4 to 3',
        '60s         Normal    Starting            node             Starting kubelet.',
      ),
    );
    assert.deepEqual(t.rows.map((r) => r.cells.slice(4, 6).concat(r.cells.slice(7))), [
      ['spec.containers{app}', 'kubelet, node-1', '10m', 12, 'web.17f1'],
      ['', 'deployment-controller', '4m', 2, 'web.17f2'],
      ['', 'kubelet', '60s', 1, 'node.1'],
    ]);
  });
});

// ---- custom resources -----------------------------------------------------------------------------------------------------

describe('custom resources: the CRD\'s printer columns', () => {
  const meta = (name: string) => ({ name, namespace: 'shop', creationTimestamp: ago(3 * M + 20 * S) });

  it('Gateway API gateways: the first address of [*], a condition found by filter, AGE from the date column', () => {
    const t = tableOf('gateway.networking.k8s.io', 'Gateway', [
      {
        apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: meta('waypoint'),
        spec: { gatewayClassName: 'istio-waypoint', listeners: [] },
        status: { addresses: [{ type: 'IPAddress', value: '10.96.0.12' }, { type: 'Hostname', value: 'waypoint.shop' }], conditions: [cond('Accepted', 'True'), cond('Programmed', 'False')] },
      },
      { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: meta('fresh'), spec: { gatewayClassName: 'istio-waypoint' } },
    ]);
    assert.deepEqual(t.columnDefinitions!.map((c) => [c.name, c.type, c.format, c.priority]), [
      ['Name', 'string', 'name', 0], ['Class', 'string', '', 0], ['Address', 'string', '', 0], ['Programmed', 'string', '', 0], ['Age', 'date', '', 0],
    ]);
    assert.deepEqual(t.rows.map((r) => r.cells), [
      ['waypoint', 'istio-waypoint', '10.96.0.12', 'False', '3m20s'],
      ['fresh', 'istio-waypoint', null, null, '3m20s'],
    ]);
  });

  it('Istio kinds: a string column holding a list prints compact JSON; the CRD description is kept; WorkloadEntry puts AGE first', () => {
    const vs = tableOf('networking.istio.io', 'VirtualService', [
      { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: meta('reviews'), spec: { hosts: ['reviews', 'reviews.shop.svc.cluster.local'], http: [] } },
      { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: meta('edge'), spec: { gateways: ['mesh', 'shop/edge'], hosts: ['*.example.com'] } },
    ]);
    assert.deepEqual(vs.rows.map((r) => r.cells), [
      ['reviews', null, '["reviews","reviews.shop.svc.cluster.local"]', '3m20s'],
      ['edge', '["mesh","shop/edge"]', '["*.example.com"]', '3m20s'],
    ]);
    assert.equal(vs.columnDefinitions![2]!.description, 'The destination hosts to which traffic is being sent');
    const we = tableOf('networking.istio.io', 'WorkloadEntry', [{ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: meta('vm'), spec: { address: '10.0.0.5' } }]);
    assert.equal(kubectl(we), lines('NAME   AGE     ADDRESS', 'vm     3m20s   10.0.0.5'));
  });

  it('GatewayClass DESCRIPTION is wide-only (priority 1); a CRD without columns prints NAME AGE', () => {
    const gc = tableOf('gateway.networking.k8s.io', 'GatewayClass', [
      { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'istio', creationTimestamp: ago(D) }, spec: { controllerName: 'istio.io/gateway-controller', description: 'The default Istio GatewayClass' }, status: { conditions: [cond('Accepted', 'True')] } },
    ]);
    assert.equal(kubectl(gc), lines('NAME    CONTROLLER                    ACCEPTED   AGE', 'istio   istio.io/gateway-controller   True       24h'));
    assert.equal(kubectl(gc, true).split('\n')[1], 'istio   istio.io/gateway-controller   True       24h   The default Istio GatewayClass');
    const sidecar = tableOf('networking.istio.io', 'Sidecar', [{ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: meta('default'), spec: {} }]);
    assert.equal(kubectl(sidecar), lines('NAME      AGE', 'default   3m20s'));
  });

  it('typed columns and the JSONPath subset: integers, numbers, booleans, dates, indexes, quoted keys, maps as sorted JSON, null', () => {
    const widget: ResourceType = {
      ...type('networking.istio.io', 'Sidecar'),
      printerColumns: [
        { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' },
        { name: 'Weight', type: 'number', jsonPath: '.spec.weight' },
        { name: 'Enabled', type: 'boolean', jsonPath: '.spec.enabled' },
        { name: 'Synced', type: 'date', jsonPath: '.status.lastSync' },
        { name: 'First', type: 'string', jsonPath: '.spec.items[0].name' },
        { name: 'Last', type: 'string', jsonPath: '.spec.items[-1].name' },
        { name: 'Owner', type: 'string', jsonPath: ".metadata.labels['example.com/owner']" },
        { name: 'Selector', type: 'string', jsonPath: '.spec.selector' },
        { name: 'Port', type: 'string', jsonPath: '.spec.items[?(@.port==8080)].name' },
        { name: 'Count', type: 'string', jsonPath: '.spec.replicas', priority: 1 },
        { name: 'Broken', type: 'string', jsonPath: '.spec[' },
        { name: 'Note', type: 'string', jsonPath: '.spec.note' },
        { name: 'Level', type: 'integer', jsonPath: '.spec.note' },
      ],
    };
    const object = (spec: object, status: object) => ({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'w', labels: { 'example.com/owner': 'team-a' }, creationTimestamp: ago(M) }, spec, status });
    const t = toTable(widget, [
      object({ replicas: 3.9, weight: 0.5, enabled: true, items: [{ name: 'a', port: 80 }, { name: 'b', port: 8080 }], selector: { zone: 'b', app: 'web<1>' }, note: null }, { lastSync: ago(2 * H) }),
      object({ replicas: 'three', weight: '1', enabled: 'yes', items: [] }, { lastSync: 'yesterday' }),
      object({}, { lastSync: '' }),
    ], { includeObject: 'None', now: NOW });
    assert.deepEqual(t.columnDefinitions!.map((c) => c.type), ['string', 'integer', 'number', 'boolean', 'date', 'string', 'string', 'string', 'string', 'string', 'string', 'string', 'string', 'integer']);
    assert.equal(t.columnDefinitions![10]!.priority, 1);
    assert.deepEqual(t.rows.map((r) => r.cells), [
      ['w', 3, 0.5, true, '120m', 'a', 'b', 'team-a', '{"app":"web\\u003c1\\u003e","zone":"b"}', 'b', '3.9', null, '<no value>', null],
      ['w', null, null, null, '<invalid>', null, null, 'team-a', null, null, 'three', null, null, null],
      ['w', null, null, null, '<unknown>', null, null, 'team-a', null, null, null, null, null, null],
    ]);
  });
});

// ---- kinds without a printer ----------------------------------------------------------------------------------------------

describe('the generic table', () => {
  it('CustomResourceDefinitions (and any kind without a printer): Name and Created At as an RFC 3339 date', () => {
    const t = tableOf('apiextensions.k8s.io', 'CustomResourceDefinition', [
      { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'gateways.gateway.networking.k8s.io', creationTimestamp: '2025-05-30T08:15:42+02:00' } },
      { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'odd.example.com' } },
    ]);
    assert.deepEqual(t.columnDefinitions!.map((c) => [c.name, c.type, c.format, c.priority]), [['Name', 'string', 'name', 0], ['Created At', 'date', '', 0]]);
    assert.equal(kubectl(t), lines('NAME                                 CREATED AT', 'gateways.gateway.networking.k8s.io   2025-05-30T06:15:42Z', 'odd.example.com                      0001-01-01T00:00:00Z'));
    const review = toTable(type('authentication.k8s.io', 'TokenReview'), [{ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', metadata: { name: 'r', creationTimestamp: ago(S) } }], { includeObject: 'None', now: NOW });
    assert.deepEqual(review.rows[0]!.cells, ['r', '2025-06-01T11:59:59Z']);
  });
});

// ---- the envelope ---------------------------------------------------------------------------------------------------------

describe('the Table envelope', () => {
  const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', uid: 'u1', resourceVersion: '17', labels: { 'istio.io/dataplane-mode': 'ambient' }, creationTimestamp: ago(H) }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };

  it('kind and apiVersion, the list\'s resourceVersion and continue token, rows with PartialObjectMetadata by default', () => {
    const t = toTable(type('', 'Namespace'), [ns], { includeObject: 'Metadata', now: NOW, resourceVersion: '120', continue: 'abc' });
    assert.equal(t.kind, 'Table');
    assert.equal(t.apiVersion, 'meta.k8s.io/v1');
    assert.deepEqual(t.metadata, { resourceVersion: '120', continue: 'abc' });
    assert.deepEqual(t.rows[0]!.object, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: ns.metadata });
    assert.deepEqual(toTable(type('', 'Namespace'), [], { includeObject: 'Metadata' }).metadata, {});
  });

  it('includeObject=Object carries the whole object, None a null object', () => {
    assert.equal(toTable(type('', 'Namespace'), [ns], { includeObject: 'Object', now: NOW }).rows[0]!.object, ns);
    const none = toTable(type('', 'Namespace'), [ns], { includeObject: 'None', now: NOW });
    assert.equal(none.rows[0]!.object, null);
    // As on the wire: the row keeps its object key (kube sends "object":null).
    assert.equal(JSON.stringify(none.rows[0]), '{"cells":["shop","Active","60m"],"object":null}');
  });

  it('ages are computed at now (default: the current time)', () => {
    const fresh = { ...ns, metadata: { ...ns.metadata, creationTimestamp: new Date(Date.now() - 90 * S).toISOString() } };
    const cell = toTable(type('', 'Namespace'), [fresh], { includeObject: 'None' }).rows[0]!.cells[2];
    assert.match(String(cell), /^9[0-9]s$/);
  });

  it('watch events: one row, headers in the first event only, the object\'s resourceVersion', () => {
    const first = toEventTable(type('', 'Namespace'), ns, { includeObject: 'Metadata', now: NOW, first: true });
    const later = toEventTable(type('', 'Namespace'), ns, { includeObject: 'Metadata', now: NOW, first: false });
    assert.deepEqual(first.columnDefinitions!.map((c) => c.name), ['Name', 'Status', 'Age']);
    assert.equal(later.columnDefinitions, null);
    assert.ok(JSON.stringify(later).includes('"columnDefinitions":null'));
    for (const t of [first, later]) {
      assert.deepEqual(t.metadata, { resourceVersion: '17' });
      assert.equal(t.rows.length, 1);
      assert.deepEqual(t.rows[0]!.cells, ['shop', 'Active', '60m']);
    }
  });

  it('column definitions are copies: a caller editing one does not change later tables', () => {
    const t = toTable(type('', 'Namespace'), [], { includeObject: 'None' });
    t.columnDefinitions![0]!.name = 'Changed';
    assert.equal(toTable(type('', 'Namespace'), [], { includeObject: 'None' }).columnDefinitions![0]!.name, 'Name');
  });
});
