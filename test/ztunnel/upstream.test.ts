// The address a workload is dialed at: ztunnel prefers the family of the address the application dialed.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ipToBytes } from '../../src/common/ip.js';
import type { Workload } from '../../src/xds/types.js';
import { workloadIp } from '../../src/ztunnel/upstream.js';
import { workload } from './helpers.js';

const dualStack = (...ips: string[]): Workload => ({ ...workload('w', [10, 0, 0, 1]).workload!, addresses: ips.map((ip) => ipToBytes(ip)!) });

it('workloadIp takes the first address of the preferred family, else the first address', () => {
  const w = dualStack('fd00::1', '10.0.0.1', '10.0.0.2');
  assert.equal(workloadIp(w), 'fd00::1');
  assert.equal(workloadIp(w, false), '10.0.0.1');
  assert.equal(workloadIp(w, true), 'fd00::1');
  assert.equal(workloadIp(dualStack('10.0.0.1'), true), '10.0.0.1');
  assert.equal(workloadIp(dualStack(), false), undefined);
});
