// Reading manifests for `ambit up/apply/delete` and reporting what happened to each object, kubectl style.
import { formatIssue, loadPaths } from '../config/loader.js';
import type { Resource } from '../api/types.js';
import type { ApplyResult } from './cluster.js';

/** Loads paths (files, directories, `-` for stdin); prints every issue with its location. */
export async function loadManifests(paths: string[]): Promise<{ objects: Resource[]; locations: string[]; failed: boolean }> {
  const { objects, issues } = await loadPaths(paths);
  for (const issue of issues) process.stderr.write(formatIssue(issue) + '\n');
  return {
    objects: objects.map((o) => o.resource),
    locations: objects.map((o) => `${o.location.file}:${o.location.line}:${o.location.column}`),
    failed: issues.some((i) => i.severity === 'error'),
  };
}

/** Prints kubectl-like result lines; returns true when any object failed. */
export function printResults(results: ApplyResult[], locations?: string[]): boolean {
  let failed = false;
  results.forEach((r, i) => {
    if (r.error) {
      failed = true;
      process.stderr.write(`${locations?.[i] ? `${locations[i]}: ` : ''}error: ${r.object}: ${r.error}\n`);
    } else process.stdout.write(`${r.message}\n`);
  });
  return failed;
}
