// `ambit config ztunnel -f PATH…`: translate configuration files offline, exactly as the control plane would, and
// print what ztunnels would receive in the shape of ztunnel's /config_dump (plus each policy's status conditions).
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { formatIssue, loadPaths } from '../../config/loader.js';
import { ConfigStore } from '../../model/store.js';
import { AmbientIndex } from '../../model/ambient.js';
import { renderConfigDump } from '../../model/configdump.js';

const FORMATS = ['json', 'yaml'];

export function register(program: Command): void {
  const config = program.command('config').description('Inspect the configuration the control plane derives from your files');
  config
    .command('ztunnel')
    .description("Print the workloads, services and policies ztunnel would receive, like ztunnel's /config_dump")
    .requiredOption('-f, --filename <path...>', 'files or directories (*.yaml, *.yml, *.json) to read; - for stdin')
    .option('-o, --output <format>', 'json or yaml', 'json')
    .action(async (opts: { filename: string[]; output: string }) => {
      if (!FORMATS.includes(opts.output)) {
        throw new Error(`unknown output format "${opts.output}" for -o/--output (expected one of: ${FORMATS.join(', ')})`);
      }
      const { objects, issues } = await loadPaths(opts.filename);
      for (const issue of issues) process.stderr.write(`${formatIssue(issue)}\n`);
      const store = new ConfigStore();
      store.apply(objects.map((o) => o.resource));
      const dump = renderConfigDump(new AmbientIndex(store));
      // What did load is still printed: one bad document should not hide the translation of the rest.
      process.stdout.write(opts.output === 'yaml' ? stringify(dump) : `${JSON.stringify(dump, null, 2)}\n`);
      if (issues.some((i) => i.severity === 'error')) process.exitCode = 1;
    });
}
