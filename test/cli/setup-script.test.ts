// scripts/setup.sh, the README's first step: on a machine that lacks tools it names the Debian packages to install
// in one line (as a user who cannot install them), and it refuses a Node.js older than 20. Run with a PATH that holds
// only what each case needs, so the machine's own tools do not hide a gap; the install path itself (apt-get, as
// root) runs in CI, where .ci/run calls the script.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../../scripts/setup.sh', import.meta.url));
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

let dir: string;

/** A bin directory with only these programs (symlinks to the machine's, or scripts). */
function bin(name: string, programs: Record<string, string>): string {
  const d = join(dir, name);
  mkdirSync(d);
  for (const [prog, target] of Object.entries(programs)) {
    if (target.startsWith('#!')) {
      writeFileSync(join(d, prog), target);
      chmodSync(join(d, prog), 0o755);
    } else {
      symlinkSync(target, join(d, prog));
    }
  }
  return d;
}

function run(path: string) {
  const r = spawnSync('/bin/sh', [join(dir, 'scripts', 'setup.sh')], {
    encoding: 'utf8', env: { PATH: path, HOME: dir }, uid: NOBODY, gid: NOBODY, timeout: 30_000,
  });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ambit-setup-'));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'scripts'));
  copyFileSync(SCRIPT, join(dir, 'scripts', 'setup.sh'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('scripts/setup.sh', { skip: !isRoot && 'needs root to run the script as another user' }, () => {
  it('names every missing Debian package in one line a user can run as root', () => {
    const path = bin('bare', { node: process.execPath, dirname: '/usr/bin/dirname', id: '/usr/bin/id', nft: '/usr/sbin/nft' });
    const r = run(path);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'missing packages: npm iproute2 util-linux mount make g++ python3; install them as root: sudo apt-get install -y npm iproute2 util-linux mount make g++ python3\n');
  });

  it('refuses a Node.js older than 20 before anything else', () => {
    const path = bin('old-node', { node: '#!/bin/sh\n[ "$1" = --version ] && echo v18.19.0\nexit 1\n', dirname: '/usr/bin/dirname', id: '/usr/bin/id' });
    const r = run(path);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'ambit needs Node.js >= 20 (found: v18.19.0); install it first, e.g. from https://nodejs.org\n');
  });
});
