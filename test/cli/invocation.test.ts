// The command `ambit up` suggests: `ambit` only when that name on PATH is this very CLI, else `node` and the script.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ambitCommand } from '../../src/cli/invocation.js';

let dir: string;
let script: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ambit-invocation-'));
  mkdirSync(join(dir, 'repo/dist/src/cli'), { recursive: true });
  script = join(dir, 'repo/dist/src/cli/main.js');
  writeFileSync(script, '');
  mkdirSync(join(dir, 'linked'));
  symlinkSync(script, join(dir, 'linked/ambit'));
  mkdirSync(join(dir, 'other'));
  writeFileSync(join(dir, 'other/ambit'), '');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ambitCommand', () => {
  it('is `ambit` when PATH leads to this script (npm link)', () => {
    assert.equal(ambitCommand(script, `${join(dir, 'nothing')}:${join(dir, 'linked')}`, join(dir, 'repo')), 'ambit');
  });
  it('is node and the script relative to the working directory otherwise, as npm start runs it', () => {
    assert.equal(ambitCommand(script, '/usr/bin', join(dir, 'repo')), 'node dist/src/cli/main.js');
  });
  it('names the script absolutely from elsewhere, and ignores another program called ambit', () => {
    assert.equal(ambitCommand(script, join(dir, 'other'), join(dir, 'other')), `node ${script}`);
  });
});
