// The CNI agent's ZDS server with two ztunnels connected at once, as during a rolling restart: each gets a snapshot,
// `add` goes to the newest only, `del` to both, and a rollout can wait for the newcomer's snapshot.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZdsServer, type ZdsWorkload } from '../../src/cni/zds.js';
import { eventually } from '../support/eventually.js';

/** A minimal ztunnel side: says hello, records every message, acks each one. */
class FakeZtunnel {
  readonly received: Record<string, unknown>[] = [];
  private buffered = '';
  constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        this.received.push(JSON.parse(line) as Record<string, unknown>);
        socket.write(`${JSON.stringify({ ack: { error: '' } })}\n`);
      }
    });
  }
  static async connect(path: string): Promise<FakeZtunnel> {
    const socket = createConnection(path);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write(`${JSON.stringify({ hello: { version: 'V1' } })}\n`);
    return new FakeZtunnel(socket);
  }
  kinds(): string[] {
    return this.received.map((m) => Object.keys(m)[0]!);
  }
}

const pod = (uid: string): ZdsWorkload => ({ uid, workloadInfo: { name: uid, namespace: 'default', serviceAccount: 'default' }, netns: `/run/netns/${uid}` });

describe('ZDS server with overlapping ztunnels', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-zds-'));
  const server = new ZdsServer(join(dir, 'zds.sock'), 'node-1', () => undefined);
  const clients: FakeZtunnel[] = [];
  before(() => server.start());
  after(() => {
    for (const c of clients) c.socket.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('snapshots each newcomer, adds to the newest only, deletes on all, and keeps the old connection open', async () => {
    const old = await FakeZtunnel.connect(server.socketPath);
    clients.push(old);
    await server.add(pod('a'));
    assert.deepEqual(old.kinds(), ['snapshotSent', 'add']);

    const seen = server.connectionCount;
    const next = await FakeZtunnel.connect(server.socketPath);
    clients.push(next);
    await server.waitForSnapshot(seen, 5000);
    assert.deepEqual(next.kinds(), ['add', 'snapshotSent'], 'the newcomer gets the current pods');

    await server.add(pod('b'));
    assert.deepEqual(next.kinds(), ['add', 'snapshotSent', 'add']);
    assert.deepEqual(old.kinds(), ['snapshotSent', 'add'], 'the old ztunnel gets no new pods');
    assert.equal(old.socket.destroyed, false, 'the old connection stays open');

    await server.del('a');
    assert.deepEqual(old.received.at(-1), { del: { uid: 'a' } });
    assert.deepEqual(next.received.at(-1), { del: { uid: 'a' } });

    // The newest leaves: adds go to the remaining (older) one again.
    next.socket.destroy();
    await eventually('adds to fall back to the old connection', async () => {
      await server.add(pod('c'), 100);
      return old.received.some((m) => (m.add as ZdsWorkload | undefined)?.uid === 'c');
    });
  });

  it('waitForSnapshot fails when no new ztunnel connects', async () => {
    await assert.rejects(server.waitForSnapshot(server.connectionCount, 50), /no new ztunnel connected on node-1 within 0.05s/);
  });
});
