// `ambit precheck`: what this machine needs for the local cluster, checked as istioctl x precheck checks a cluster
// before an install, and printed the same way: a green tick when nothing is missing, otherwise one line per issue
// saying what to install or allow.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';
import type { Command } from 'commander';
import { checkPrivileges } from '../../local/client.js';
import { onPath, packageOf } from '../../local/sys.js';

/** The system tools the local cluster runs (src/local/sys.ts, sandbox.ts, network.ts). */
const TOOLS = ['ip', 'nft', 'nsenter', 'unshare', 'setpriv', 'mount'];
/** nftables' `inet` family with the features capture uses (socket and mark matches) needs Linux 5.x. */
const MIN_KERNEL: [number, number] = [5, 4];

interface Issue {
  level: 'Error' | 'Warning';
  message: string;
}

/** The running kernel's build configuration (/proc/config.gz, else /boot/config-RELEASE), when the machine has it. */
function kernelConfig(): string | undefined {
  try {
    if (existsSync('/proc/config.gz')) return gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
    const boot = `/boot/config-${release()}`;
    if (existsSync(boot)) return readFileSync(boot, 'utf8');
  } catch {
    // Unreadable: fall back to the module files.
  }
  return undefined;
}

/** Whether the kernel has a feature (built in or as a module); undefined when the machine cannot tell. */
function kernelFeature(config: string | undefined, option: string, module: string, dir: string): boolean | undefined {
  if (config !== undefined) return new RegExp(`^${option}=[ym]$`, 'm').test(config);
  const modules = `/lib/modules/${release()}`;
  if (existsSync(`/sys/module/${module}`)) return true;
  if (!existsSync(modules)) return undefined;
  if (existsSync(`${modules}/modules.builtin`) && readFileSync(`${modules}/modules.builtin`, 'utf8').includes(`/${module}.ko`)) return true;
  return ['', '.xz', '.zst', '.gz'].some((ext) => existsSync(`${modules}/kernel/${dir}/${module}.ko${ext}`));
}

export async function precheck(): Promise<Issue[]> {
  const issues: Issue[] = [];
  if (process.platform !== 'linux') return [{ level: 'Error', message: `the local cluster needs Linux (network namespaces, veth, nftables); this is ${process.platform}` }];
  const [major = 0, minor = 0] = release().split(/[.-]/).map(Number);
  if (major < MIN_KERNEL[0] || (major === MIN_KERNEL[0] && minor < MIN_KERNEL[1])) {
    issues.push({ level: 'Error', message: `kernel ${release()} is older than ${MIN_KERNEL.join('.')}, which the nftables capture rules need` });
  }
  if (!existsSync('/proc/self/ns/net')) issues.push({ level: 'Error', message: 'the kernel has no network namespaces (CONFIG_NET_NS)' });
  const config = kernelConfig();
  if (kernelFeature(config, 'CONFIG_VETH', 'veth', 'drivers/net') === false) issues.push({ level: 'Error', message: 'the kernel has no veth driver (CONFIG_VETH)' });
  if (kernelFeature(config, 'CONFIG_NF_TABLES', 'nf_tables', 'net/netfilter') === false) issues.push({ level: 'Error', message: 'the kernel has no nftables (CONFIG_NF_TABLES)' });
  const [nodeMajor = 0] = process.versions.node.split('.').map(Number);
  if (nodeMajor < 20) issues.push({ level: 'Error', message: `Node.js ${process.versions.node} is older than 20; install Node.js 20 or later` });
  const missing = TOOLS.filter((t) => !onPath(t));
  if (missing.length > 0) {
    const packages = [...new Set(missing.map(packageOf))];
    issues.push({ level: 'Error', message: `missing tools: ${missing.join(', ')}; install them, e.g. apt-get install ${packages.join(' ')}` });
  }
  try {
    // Only unshare can be tried without the tools; a missing unshare is reported above.
    if (!missing.includes('unshare')) await checkPrivileges();
  } catch (err) {
    issues.push({ level: 'Error', message: (err as Error).message });
  }
  return issues;
}

export function register(program: Command): void {
  program
    .command('precheck')
    .description('Check that this machine can run the local cluster (kernel, nftables, veth, privileges, tools), as istioctl x precheck does for a cluster')
    .action(async () => {
      const issues = await precheck();
      if (issues.length === 0) {
        process.stderr.write('✔ No issues found when checking the machine. Ambit is safe to run here!\n  To get started: ambit up -f examples/demo\n');
        return;
      }
      process.stdout.write(issues.map((i) => `${i.level}: ${i.message}`).join('\n') + '\n');
      process.stderr.write('Issues found when checking the machine. The local cluster may not start here.\n');
      process.exitCode = 1;
    });
}
