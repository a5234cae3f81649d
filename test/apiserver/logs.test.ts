// pods/log against real files and a real HTTP server on loopback; the previous instance's log comes from a real
// supervised process that restarts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from '../../src/apiserver/errors.js';
import { serveLogs, type ContainerLog, type LogsBackend } from '../../src/apiserver/logs.js';
import { Ledger } from '../../src/local/ledger.js';
import { previousLogPath, SupervisedProcess } from '../../src/local/process.js';
import { eventually } from '../support/eventually.js';
import { HAVE_KUBECTL, KUBECTL, startKubectlStub, type KubectlStub } from '../support/kubectl-stub.js';

/** Pod `web`: its containers' logs, or a pod not scheduled yet when `pending`. */
class TestPod implements LogsBackend {
  containers = new Map<string, ContainerLog>();
  pending = false;

  containerLog(container: string | undefined): ContainerLog | null {
    if (this.pending) return null;
    const log = this.containers.get(container ?? 'app');
    if (!log) throw new ApiError(400, 'BadRequest', `container ${container} is not valid for pod web`);
    return log;
  }
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

describe('pods/log', () => {
  const pod = new TestPod();
  let dir: string;
  let server: http.Server;
  let base: string;
  /** The handler of each request, to see when the server side of a stream is done. */
  const handlers: Promise<void>[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ambit-logs-'));
    server = http.createServer((req, res) => void handlers.push(serveLogs(req, res, 'web', pod)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/namespaces/default/pods/web/log`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  /** A container whose current log holds `text` (its instance already ended unless `ended` is given). */
  function container(name: string, text: string, ended: Promise<void> = Promise.resolve()): ContainerLog {
    const path = join(dir, `${name}.log`);
    writeFileSync(path, text);
    const log = { container: name, path, previousPath: previousLogPath(path), ended };
    pod.containers.set(name, log);
    return log;
  }

  function get(query: string): Promise<Reply> {
    return new Promise((resolve, reject) => {
      http
        .get(`${base}?${query}`, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        })
        .on('error', reject);
    });
  }

  /** A streamed reply read as it arrives. */
  function follow(query: string): Promise<{ res: http.IncomingMessage; text: () => string; done: Promise<void>; req: http.ClientRequest }> {
    return new Promise((resolve, reject) => {
      const req = http.get(`${base}?${query}`, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        const done = new Promise<void>((r) => res.on('end', r));
        resolve({ res, text: () => body, done, req });
      });
      req.on('error', reject);
    });
  }

  it('sends the whole log as chunked text/plain', async () => {
    container('app', 'one\ntwo\n');
    const r = await get('container=app');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/plain');
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    assert.equal(r.body, 'one\ntwo\n');
  });

  it('tailLines: the last N lines, an unfinished last line counting as one', async () => {
    container('app', 'a\nb\nc\n');
    assert.equal((await get('container=app&tailLines=2')).body, 'b\nc\n');
    assert.equal((await get('container=app&tailLines=0')).body, '');
    assert.equal((await get('container=app&tailLines=10')).body, 'a\nb\nc\n');
    container('app', 'a\nb\nc');
    assert.equal((await get('container=app&tailLines=1')).body, 'c');
    assert.equal((await get('container=app&tailLines=2')).body, 'b\nc');
  });

  it('tailLines on a large log, lines straddling the read chunks', async () => {
    const lines = Array.from({ length: 60_000 }, (_, i) => `line ${i} ${'x'.repeat(i % 97)}`);
    container('app', lines.join('\n') + '\n');
    for (const n of [1, 7, 1000, 25_000]) {
      assert.equal((await get(`container=app&tailLines=${n}`)).body, lines.slice(-n).join('\n') + '\n', `tailLines=${n}`);
    }
  });

  it('limitBytes: stops after N bytes, after the tail is applied', async () => {
    container('app', 'hello\nworld\n');
    assert.equal((await get('container=app&limitBytes=3')).body, 'hel');
    assert.equal((await get('container=app&tailLines=1&limitBytes=3')).body, 'wor');
  });

  it('follow: streams appended output until the instance ends, then its last words', async () => {
    let end!: () => void;
    const log = container('app', 'start\n', new Promise<void>((r) => (end = r)));
    const f = await follow('container=app&follow=true');
    await eventually('the existing log', () => f.text() === 'start\n');
    appendFileSync(log.path, 'more\n');
    await eventually('the appended line', () => f.text() === 'start\nmore\n');
    appendFileSync(log.path, 'last\n');
    end();
    await f.done;
    assert.equal(f.text(), 'start\nmore\nlast\n');
  });

  it('follow: stops when the client goes away', async () => {
    container('app', 'x\n', new Promise<void>(() => undefined));
    const f = await follow('container=app&follow=true');
    await eventually('the existing log', () => f.text() === 'x\n');
    let handled = false;
    void handlers.at(-1)!.then(() => (handled = true));
    f.req.destroy();
    await eventually('the server side of the stream done', () => handled);
  });

  it('follow with limitBytes ends at the limit even while the instance runs', async () => {
    const log = container('app', 'abc', new Promise<void>(() => undefined));
    const f = await follow('container=app&follow=true&limitBytes=5');
    await eventually('the existing log', () => f.text() === 'abc');
    appendFileSync(log.path, 'defgh');
    await f.done;
    assert.equal(f.text(), 'abcde');
  });

  it("previous: the run before a restart, kept by the supervised process; kube's error without one", async () => {
    const path = join(dir, 'restarting.log');
    // Each run says which it is, then fails: OnFailure restarts it.
    const script = `n=$(cat ${dir}/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${dir}/count; echo "run $n"; exit 1`;
    const proc = new SupervisedProcess(
      { description: 'test', argv: ['sh', '-c', script], env: {}, logPath: path, keepPreviousLog: true, restartPolicy: 'OnFailure' },
      new Ledger(join(dir, 'ledger.jsonl')),
      () => undefined,
    );
    pod.containers.set('restarting', { container: 'restarting', path, previousPath: previousLogPath(path), ended: Promise.resolve() });
    const before = await get('container=restarting&previous=true');
    assert.equal(before.status, 400);
    assert.deepEqual(JSON.parse(before.body), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'previous terminated container "restarting" in pod "web" not found',
      reason: 'BadRequest',
      code: 400,
    });
    proc.start();
    try {
      await eventually('the second run', () => proc.restarts >= 1 && readFileSync(path, 'utf8') === 'run 2\n', { timeoutMs: 10_000 });
    } finally {
      await proc.stop(1000);
    }
    assert.equal((await get('container=restarting&previous=true')).body, 'run 1\n');
    assert.equal((await get('container=restarting')).body, 'run 2\n');
  });

  it('sinceSeconds/sinceTime: served where the file times decide, refused where they cannot', async () => {
    const log = container('app', 'old\n');
    const hourAgo = new Date(Date.now() - 3600_000);
    utimesSync(log.path, hourAgo, hourAgo);
    // Last written an hour ago: nothing in the last minute.
    const quiet = await get('container=app&sinceSeconds=60');
    assert.equal(quiet.status, 200);
    assert.equal(quiet.body, '');

    container('app', 'first\n');
    const born = statSync(log.path).birthtimeMs;
    await eventually("the clock past the file's birth", () => Date.now() > born + 20);
    appendFileSync(log.path, 'second\n');
    const fresh = await get('container=app&sinceSeconds=60');
    if (born === 0) {
      assert.equal(fresh.status, 400); // a file system without birth times: the file's age is unknown
    } else {
      // Created within the minute: all of it is newer.
      assert.equal(fresh.body, 'first\nsecond\n');
      // Written on both sides of the instant: refused, with why and what to use instead.
      const between = new Date(born + 10).toISOString();
      const r = await get(`container=app&sinceTime=${between}`);
      assert.equal(r.status, 400);
      const status = JSON.parse(r.body) as { reason: string; message: string };
      assert.equal(status.reason, 'BadRequest');
      assert.equal(
        status.message,
        `sinceSeconds and sinceTime cannot be honoured for container "app" in pod "web": its log records no time for each line and holds output from both before and after ${between}; use tailLines or limitBytes instead`,
      );
    }
  });

  it("refuses timestamps, and bad options with kube-apiserver's messages", async () => {
    container('app', 'x\n');
    const message = async (query: string, code: number) => {
      const r = await get(query);
      assert.equal(r.status, code, query);
      return (JSON.parse(r.body) as { message: string }).message;
    };
    assert.match(await message('container=app&timestamps=true', 400), /^timestamps=true is not supported: /);
    assert.equal(await message('container=app&tailLines=-1', 422), 'PodLogOptions "web" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0');
    assert.equal(await message('container=app&limitBytes=0', 422), 'PodLogOptions "web" is invalid: limitBytes: Invalid value: 0: must be greater than 0');
    assert.equal(await message('container=app&tailLines=abc', 400), 'strconv.ParseInt: parsing "abc": invalid syntax');
    assert.match(await message('container=app&sinceSeconds=5&sinceTime=2025-01-01T00:00:00Z', 422), /at most one of `sinceTime` or `sinceSeconds` may be specified/);
    assert.equal(await message('container=nope', 400), 'container nope is not valid for pod web');
  });

  it('a pod not on a node yet has an empty log', async () => {
    pod.pending = true;
    try {
      const r = await get('container=app');
      assert.equal(r.status, 200);
      assert.equal(r.body, '');
    } finally {
      pod.pending = false;
    }
  });
});

describe(`kubectl logs (${KUBECTL})`, { skip: !HAVE_KUBECTL && `${KUBECTL} is not installed` }, () => {
  const pod = new TestPod();
  let dir: string;
  let stub: KubectlStub;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ambit-kubectl-logs-'));
    stub = await startKubectlStub({ subresource: (req, res) => void serveLogs(req, res, 'web', pod) });
  });
  after(async () => {
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function app(text: string, ended: Promise<void> = Promise.resolve()): ContainerLog {
    const path = join(dir, 'app.log');
    writeFileSync(path, text);
    const log = { container: 'app', path, previousPath: previousLogPath(path), ended };
    pod.containers.set('app', log);
    return log;
  }

  it('prints the log, its tail, and follows it until the container ends', async () => {
    app('a\nb\nc\n');
    assert.deepEqual(await stub.kubectl(['logs', 'web']), { code: 0, stdout: 'a\nb\nc\n', stderr: '' });
    assert.deepEqual(await stub.kubectl(['logs', 'web', '--tail=2', '--limit-bytes=3']), { code: 0, stdout: 'b\nc', stderr: '' });
    let end!: () => void;
    const log = app('first\n', new Promise<void>((r) => (end = r)));
    let printed = '';
    const following = stub.kubectl(['logs', '-f', 'web'], { progress: (out) => (printed = out) });
    await eventually('kubectl printing the log so far', () => printed === 'first\n');
    appendFileSync(log.path, 'second\n');
    end();
    assert.deepEqual(await following, { code: 0, stdout: 'first\nsecond\n', stderr: '' });
    assert.deepEqual(stub.unexpected, []);
  });

  it("prints kube's errors for --previous without one, and the refusal of --timestamps", async () => {
    app('x\n');
    assert.deepEqual(await stub.kubectl(['logs', 'web', '-p']), {
      code: 1,
      stdout: '',
      stderr: 'Error from server (BadRequest): previous terminated container "app" in pod "web" not found\n',
    });
    const r = await stub.kubectl(['logs', 'web', '--timestamps']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error from server \(BadRequest\): timestamps=true is not supported: /);
  });
});
