// A cluster started by another user (its state directory is 0700): the CLI says whose it is and what to do instead
// of a bare EACCES.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const isRoot = process.getuid?.() === 0;

describe('a cluster of another user', { skip: !isRoot && 'needs root to act as two users' }, () => {
  let base: string;
  let server: net.Server;
  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'ambit-access-'));
    chmodSync(base, 0o755);
    const dir = join(base, 'shared');
    mkdirSync(dir, { mode: 0o700 });
    server = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(join(dir, 'supervisor.sock'), r));
  });
  after(() => {
    server?.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('names the problem and the way out', () => {
    const r = spawnSync(process.execPath, [CLI, 'get', 'pods', '--cluster', 'shared'], {
      encoding: 'utf8', uid: 65534, gid: 65534, env: { ...process.env, AMBIT_STATE_DIR: base, HOME: base }, timeout: 30_000,
    });
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      `error: cluster "shared" belongs to another user: permission denied on ${join(base, 'shared', 'supervisor.sock')}; run ambit as the user who started it (for a cluster started as root: sudo -E ambit …)\n`,
    );
  });
});
