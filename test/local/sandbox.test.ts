// The kubelet's reading of a container's securityContext (over its pod's): user, groups, capabilities and the
// runAsNonRoot refusals with the kubelet's messages.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Container, PodSpec } from '../../src/api/types.js';
import { ContainerConfigError, DEFAULT_CAPABILITIES, LINUX_CAPABILITIES, containerSecurity, idMaps } from '../../src/local/sandbox.js';

const POD = { name: 'web', namespace: 'shop', uid: 'u-1' };
const security = (podCtx: PodSpec['securityContext'], ctx: Container['securityContext'], mapped?: Parameters<typeof containerSecurity>[3]) => {
  const c: Container = { name: 'app', command: ['sleep'], ...(ctx ? { securityContext: ctx } : {}) };
  return containerSecurity(POD, { containers: [c], ...(podCtx ? { securityContext: podCtx } : {}) }, c, mapped);
};

describe('container securityContext', () => {
  it('runs as root with the default capabilities when nothing is said', () => {
    assert.deepEqual(security(undefined, undefined), { clearGroups: true, noNewPrivs: false, capabilities: [...DEFAULT_CAPABILITIES] });
  });

  it("takes the user and group from the container over the pod, and the pod's supplemental groups", () => {
    assert.deepEqual(security({ runAsUser: 1000, runAsGroup: 2000, supplementalGroups: [5] }, { runAsUser: 1001 }), {
      runAsUser: 1001,
      runAsGroup: 2000,
      supplementalGroups: [5],
      clearGroups: true,
      noNewPrivs: false,
      capabilities: [...DEFAULT_CAPABILITIES],
    });
  });

  const refusals: [string, PodSpec['securityContext'], Container['securityContext'], string][] = [
    ['no user (the image runs as root)', { runAsNonRoot: true }, undefined, 'container has runAsNonRoot and image will run as root (pod: "web_shop(u-1)", container: app)'],
    ['user 0', undefined, { runAsNonRoot: true, runAsUser: 0 }, `container's runAsUser breaks non-root policy (pod: "web_shop(u-1)", container: app)`],
    ['user 0 from the pod', { runAsUser: 0 }, { runAsNonRoot: true }, `container's runAsUser breaks non-root policy (pod: "web_shop(u-1)", container: app)`],
  ];
  for (const [name, podCtx, ctx, message] of refusals) {
    it(`refuses runAsNonRoot with ${name}`, () => {
      assert.throws(() => security(podCtx, ctx), (err: unknown) => err instanceof ContainerConfigError && err.message === message && err.reason === 'CreateContainerConfigError');
    });
  }

  it('accepts runAsNonRoot with a non-zero user, and a container may turn it off', () => {
    assert.equal(security({ runAsNonRoot: true }, { runAsUser: 7 }).runAsUser, 7);
    assert.equal(security({ runAsNonRoot: true }, { runAsNonRoot: false }).runAsUser, undefined);
  });

  it("adds and drops capabilities by Kubernetes name (with or without CAP_) in containerd's order", () => {
    const caps = (ctx: Container['securityContext']) => security(undefined, ctx).capabilities;
    assert.deepEqual(caps({ capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } }), ['net_bind_service']);
    assert.deepEqual(caps({ capabilities: { add: ['CAP_NET_ADMIN'] } }), [...DEFAULT_CAPABILITIES, 'net_admin']);
    assert.ok(!(caps({ capabilities: { drop: ['NET_RAW', 'cap_kill'] } }) as string[]).some((c) => c === 'net_raw' || c === 'kill'));
    assert.equal(caps({ capabilities: { add: ['ALL'] } }), 'all');
    // containerd's own example: everything but what is dropped.
    assert.deepEqual(caps({ capabilities: { add: ['ALL'], drop: ['SYS_ADMIN'] } }), LINUX_CAPABILITIES.filter((c) => c !== 'sys_admin'));
    // A drop wins over an add of the same capability.
    assert.ok(!(caps({ capabilities: { add: ['SYS_PTRACE'], drop: ['SYS_PTRACE'] } }) as string[]).includes('sys_ptrace'));
    assert.equal(caps({ privileged: true, capabilities: { drop: ['ALL'] } }), 'all');
    assert.throws(() => caps({ capabilities: { add: ['a,+sys_admin'] } }), (err: unknown) => err instanceof ContainerConfigError && /unknown capability "a,\+sys_admin" in capabilities.add/.test(err.message));
  });

  it('maps allowPrivilegeEscalation: false to no_new_privs', () => {
    assert.equal(security(undefined, { allowPrivilegeEscalation: false }).noNewPrivs, true);
    assert.equal(security(undefined, { allowPrivilegeEscalation: true }).noNewPrivs, false);
  });

  it('refuses ids a rootless cluster cannot map, naming the field, and keeps the groups it cannot drop', () => {
    const onlyRoot = { user: (id: number) => id === 0, group: (id: number) => id === 0, setgroups: false };
    assert.deepEqual(security({ runAsUser: 0 }, undefined, onlyRoot), { runAsUser: 0, clearGroups: false, noNewPrivs: false, capabilities: [...DEFAULT_CAPABILITIES] });
    assert.throws(() => security(undefined, { runAsUser: 1000 }, onlyRoot), /^Error: runAsUser 1000 cannot be used in a rootless cluster/);
    assert.throws(() => security(undefined, { runAsGroup: 10 }, onlyRoot), /runAsGroup 10 cannot be used/);
    assert.throws(() => security({ supplementalGroups: [0] }, undefined, onlyRoot), /supplementalGroups cannot be used/);
  });

  it("reads this process's id maps", () => {
    // The test runs as root of the initial user namespace, where every id is mapped and setgroups is allowed.
    const ids = idMaps();
    assert.ok(ids.user(0) && ids.user(65534) && ids.group(4294967294) && ids.setgroups);
  });
});
