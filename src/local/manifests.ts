// Reading manifests for `ambit up/apply/delete` and reporting what happened to each object, kubectl style.
import { formatIssue, loadPaths, type ValidateMode } from '../config/loader.js';
import type { Resource } from '../api/types.js';
import type { KubeObject } from '../apiserver/store.js';
import type { ApplyResult } from './cluster.js';

const VALIDATE_MODES: Record<string, ValidateMode> = { strict: 'strict', true: 'strict', warn: 'warn', ignore: 'ignore', false: 'ignore' };

/** kubectl's `--validate` value (`--validate` alone is `strict`), with kubectl's message for anything else. */
export function parseValidate(value: string | boolean): ValidateMode {
  const mode = Object.hasOwn(VALIDATE_MODES, String(value)) ? VALIDATE_MODES[String(value)] : undefined;
  if (!mode) throw new Error(`invalid - validate option ${JSON.stringify(value)}; must be one of: strict (or true), warn, ignore (or false)`);
  return mode;
}

export interface Manifests {
  /** Objects without errors: the kinds the mesh reads, typed, and the registry's other kinds as written. */
  objects: (Resource | KubeObject)[];
  /** `file:line:col` of each of `objects`. */
  locations: string[];
  failed: boolean;
}

/** Loads paths (files, directories, `-` for stdin); prints every issue with its location. */
export async function loadManifests(paths: string[], validate: ValidateMode = 'strict'): Promise<Manifests> {
  const { objects, issues, others } = await loadPaths(paths, undefined, { validate });
  for (const issue of issues) {
    // Under --validate=warn kubectl prints the API server's warning for each unknown field as it comes.
    process.stderr.write(issue.unknownField && issue.severity === 'warning' ? `Warning: ${issue.message}\n` : `${formatIssue(issue)}\n`);
  }
  const at = (l: { file: string; line: number; column: number }) => `${l.file}:${l.line}:${l.column}`;
  return {
    objects: [...objects.map((o) => o.resource), ...others.map((o) => o.raw as KubeObject)],
    locations: [...objects.map((o) => at(o.location)), ...others.map((o) => at(o.location))],
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
