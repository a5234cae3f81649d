// Running the real kubectl against a loopback HTTP server that answers just what kubectl asks before a pod
// subresource (exec, log): legacy discovery and GET of pod `default/web` with one container `app`. Everything else
// is recorded as unexpected and answered 404, so a test sees what kubectl wanted that the stub did not serve.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';

/** A WebSocket-capable kubectl (≥ 1.30) this kind of machine ships beside its Cloud SDK dispatcher. */
export const KUBECTL = '/usr/lib/google-cloud-sdk/bin/kubectl.1.32';
export const HAVE_KUBECTL = existsSync(KUBECTL);

export const POD_PATH = '/api/v1/namespaces/default/pods/web';

export interface KubectlStub {
  /** Requests kubectl made that the stub does not serve. */
  unexpected: string[];
  /** Runs kubectl to its end; `input` is its stdin, `progress` sees its stdout so far as it grows. */
  kubectl(args: string[], options?: { input?: string; progress?: (stdout: string) => void }): Promise<{ code: number | null; stdout: string; stderr: string }>;
  close(): Promise<void>;
}

/** `subresource` gets plain requests under POD_PATH + '/'; `upgrade` gets every upgrade request. */
export async function startKubectlStub(handlers: {
  subresource?: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  upgrade?: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
}): Promise<KubectlStub> {
  const unexpected: string[] = [];
  const json = (res: http.ServerResponse, code: number, body: unknown) => {
    res.writeHead(code, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const path = new URL(req.url!, 'http://x').pathname;
    if (path === '/api') return json(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
    if (path === '/apis') return json(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
    if (path === '/api/v1') {
      return json(res, 200, {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: 'v1',
        resources: [
          { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list'], shortNames: ['po'] },
          { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] },
          { name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] },
        ],
      });
    }
    if (path === POD_PATH) {
      return json(res, 200, {
        kind: 'Pod',
        apiVersion: 'v1',
        metadata: { name: 'web', namespace: 'default', uid: '1' },
        spec: { containers: [{ name: 'app', image: 'x' }], nodeName: 'node-1' },
        status: { phase: 'Running' },
      });
    }
    if (path.startsWith(`${POD_PATH}/`) && handlers.subresource) return handlers.subresource(req, res);
    unexpected.push(`${req.method} ${req.url}`);
    json(res, 404, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'the server could not find the requested resource', reason: 'NotFound', code: 404 });
  });
  if (handlers.upgrade) server.on('upgrade', handlers.upgrade);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const dir = mkdtempSync(join(tmpdir(), 'ambit-kubectl-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 't', cluster: { server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } }],
      users: [{ name: 't', user: {} }],
      contexts: [{ name: 't', context: { cluster: 't', user: 't', namespace: 'default' } }],
      'current-context': 't',
    }),
  );
  return {
    unexpected,
    kubectl: (args, { input, progress } = {}) =>
      new Promise((resolve, reject) => {
        // Its own HOME and cache: nothing read from or written to the user's ~/.kube.
        const child = spawn(KUBECTL, ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), ...args], { env: { ...process.env, HOME: dir } });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c) => {
          stdout += c;
          progress?.(stdout);
        });
        child.stderr.on('data', (c) => (stderr += c));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
        child.stdin.end(input);
      }),
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
