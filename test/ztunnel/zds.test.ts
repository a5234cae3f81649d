// The ZDS client against a small CNI-agent-side server on a Unix stream socket: hello, add/del/snapshot acks (errors
// from the handler travel back in the ack), dropping pods missing from a new snapshot, malformed messages, and
// reconnecting both when the agent starts late and when it goes away.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZdsClient, type ZdsPod } from '../../src/ztunnel/zds.js';
import { RecordingLog, eventually } from './helpers.js';

/** The agent's end of one connection: send a message, await its ack. */
class AgentConn {
  private buffered = '';
  private readonly lines: string[] = [];
  private waiters: ((l: string) => void)[] = [];
  constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      let nl;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
  }
  next(): Promise<any> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(JSON.parse(l));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no message from ztunnel within 3s')), 3000);
      this.waiters.push((line) => {
        clearTimeout(t);
        resolve(JSON.parse(line));
      });
    });
  }
  async send(msg: object | string): Promise<any> {
    this.socket.write(`${typeof msg === 'string' ? msg : JSON.stringify(msg)}\n`);
    return this.next();
  }
}

const add = (uid: string, name: string) => ({
  add: { uid, workloadInfo: { name, namespace: 'demo', serviceAccount: 'echo' }, netns: `/run/netns/ambit-${name}` },
});

describe('ztunnel ZDS client', () => {
  let dir: string;
  let path: string;
  let server: Server | undefined;
  const conns: AgentConn[] = [];
  const log = new RecordingLog();
  const pods = new Map<string, ZdsPod>();
  const calls: string[] = [];
  let client: ZdsClient;

  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((s) => conns.push(new AgentConn(s)));
      server.listen(path, resolve);
    });

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ambit-zt-zds-'));
    path = join(dir, 'zds.sock');
    client = new ZdsClient({
      path,
      log: log.logger('inpod'),
      initialBackoffMs: 20,
      maxBackoffMs: 100,
      handler: {
        add: async (pod) => {
          calls.push(`add ${pod.uid}`);
          if (pod.name === 'broken') throw new Error(`cannot enter network namespace ${pod.netnsPath}`);
          pods.set(pod.uid, pod);
        },
        del: async (uid) => {
          calls.push(`del ${uid}`);
          pods.delete(uid);
        },
        snapshotSent: async (keep) => {
          calls.push(`snapshot ${[...keep].sort().join(',')}`);
          for (const uid of [...pods.keys()]) if (!keep.has(uid)) pods.delete(uid);
        },
      },
    });
  });

  after(async () => {
    client.close();
    for (const c of conns) c.socket.destroy();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('retries until the agent listens, then says hello', async () => {
    client.start();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(client.connected, false);
    assert.ok(log.has('cannot connect to the CNI agent'));
    await listen();
    await eventually('connection', () => conns.length === 1 && client.connected);
    assert.deepEqual(await conns[0]!.next(), { hello: { version: 'V1' } });
    assert.equal(client.snapshotApplied, false, 'not ready before the snapshot');
  });

  it('acks add, snapshot and del, and reports handler failures in the ack', async () => {
    const agent = conns[0]!;
    assert.deepEqual(await agent.send(add('uid-a', 'a')), { ack: { error: '' } });
    assert.deepEqual(pods.get('uid-a'), { uid: 'uid-a', name: 'a', namespace: 'demo', serviceAccount: 'echo', netnsPath: '/run/netns/ambit-a' });
    assert.deepEqual(await agent.send(add('uid-b', 'b')), { ack: { error: '' } });
    const failed = await agent.send(add('uid-x', 'broken'));
    assert.equal(failed.ack.error, 'cannot enter network namespace /run/netns/ambit-broken');
    assert.deepEqual(await agent.send({ snapshotSent: {} }), { ack: { error: '' } });
    assert.equal(client.snapshotApplied, true);
    assert.deepEqual(await agent.send({ del: { uid: 'uid-b' } }), { ack: { error: '' } });
    assert.deepEqual([...pods.keys()], ['uid-a']);
  });

  it('answers malformed messages with an error and keeps going', async () => {
    const agent = conns[0]!;
    assert.match((await agent.send('{not json')).ack.error, /invalid JSON/);
    assert.equal((await agent.send({ add: { uid: 'u', workloadInfo: { name: 'n' }, netns: '/x' } })).ack.error, 'add.workloadInfo.namespace must be a non-empty string');
    assert.match((await agent.send({ bogus: 1 })).ack.error, /unknown message with keys bogus/);
    assert.deepEqual(await agent.send(add('uid-c', 'c')), { ack: { error: '' } });
    assert.ok(pods.has('uid-c'));
  });

  it('reconnects after the agent goes away; the new snapshot drops pods it no longer lists', async () => {
    conns[0]!.socket.destroy();
    await eventually('second connection', () => conns.length === 2 && client.connected);
    const agent = conns[1]!;
    assert.deepEqual(await agent.next(), { hello: { version: 'V1' } });
    assert.equal(client.snapshotApplied, false);
    assert.deepEqual(await agent.send(add('uid-a', 'a')), { ack: { error: '' } });
    assert.deepEqual(await agent.send({ snapshotSent: {} }), { ack: { error: '' } });
    assert.deepEqual([...pods.keys()], ['uid-a'], 'uid-c was not replayed, so it is dropped');
    assert.equal(calls.at(-1), 'snapshot uid-a');
    assert.ok(client.snapshotApplied);
  });
});
