// Reading manifests for `ambit up/apply/delete` and reporting what happened to each object, kubectl style.
import { formatIssue, loadPaths, type OtherObject, type ValidateMode } from '../config/loader.js';
import { qualifiedKindName } from '../api/kinds.js';
import type { Resource } from '../api/types.js';
import type { ApplyResult } from './cluster.js';

const VALIDATE_MODES: Record<string, ValidateMode> = { strict: 'strict', true: 'strict', warn: 'warn', ignore: 'ignore', false: 'ignore' };

/** kubectl's `--validate` value (`--validate` alone is `strict`), with kubectl's message for anything else. */
export function parseValidate(value: string | boolean): ValidateMode {
  const mode = Object.hasOwn(VALIDATE_MODES, String(value)) ? VALIDATE_MODES[String(value)] : undefined;
  if (!mode) throw new Error(`invalid - validate option ${JSON.stringify(value)}; must be one of: strict (or true), warn, ignore (or false)`);
  return mode;
}

export interface Manifests {
  /** Objects of the kinds the mesh reads, without errors. */
  objects: Resource[];
  /** `file:line:col` of each of `objects`. */
  locations: string[];
  /** Objects of kinds the cluster serves but does not store. */
  others: OtherObject[];
  failed: boolean;
}

/** Loads paths (files, directories, `-` for stdin); prints every issue with its location. */
export async function loadManifests(paths: string[], validate: ValidateMode = 'strict'): Promise<Manifests> {
  const { objects, issues, others } = await loadPaths(paths, undefined, { validate });
  for (const issue of issues) {
    // Under --validate=warn kubectl prints the API server's warning for each unknown field as it comes.
    process.stderr.write(issue.unknownField && issue.severity === 'warning' ? `Warning: ${issue.message}\n` : `${formatIssue(issue)}\n`);
  }
  return {
    objects: objects.map((o) => o.resource),
    locations: objects.map((o) => `${o.location.file}:${o.location.line}:${o.location.column}`),
    others,
    failed: issues.some((i) => i.severity === 'error'),
  };
}

/**
 * Objects of kinds the registry serves that the local cluster does not store (its store holds the kinds the mesh
 * reads): each is reported as an error rather than dropped in silence. Returns true when there were any.
 */
export function reportNotStored(others: OtherObject[], verb: 'applied' | 'deleted'): boolean {
  for (const o of others) {
    const meta = typeof o.raw.metadata === 'object' && o.raw.metadata !== null ? (o.raw.metadata as { name?: unknown }) : {};
    const where = `${o.location.file}:${o.location.line}:${o.location.column}`;
    process.stderr.write(`${where}: error: ${qualifiedKindName(o.type)}/${String(meta.name ?? '')}: not ${verb}: the local cluster stores only the kinds the mesh reads\n`);
  }
  return others.length > 0;
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
