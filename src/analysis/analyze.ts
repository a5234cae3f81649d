// Runs the analyzers and shapes their messages as istioctl analyze does: kept for the namespace asked for, minus
// suppressions (`--suppress CODE=RESOURCE` and the `galley.istio.io/analyze-suppress` annotation), sorted by level,
// code and resource, deduplicated, filtered by level, and printed as log lines, JSON or YAML.
import { stringify } from 'yaml';
import { ANALYZERS, type AnalysisContext, type Analyzer, type Message, type Origin } from './analyzers.js';
import { documentationUrl, levelRank, type Level } from './messages.js';

export type { AnalyzedObject, ForeignObject, Message, Origin } from './analyzers.js';

/** The annotation with which an object opts out of codes (comma-separated, `*` for all), as in Istio. */
export const SUPPRESS_ANNOTATION = 'galley.istio.io/analyze-suppress';

export interface Suppression {
  code: string;
  /** Matched against `Kind namespace/name`; `*` matches any run of characters. */
  resource: string;
}

export interface AnalyzeOptions {
  /** Keep only messages about this namespace's objects (and cluster-scoped ones); undefined keeps all. */
  namespace?: string;
  suppressions?: Suppression[];
  /** Run only these analyzers (by name). */
  analyzers?: string[];
}

export type AnalysisInput = Omit<AnalysisContext, 'report'>;

/** Thrown for an `--analyzer` name that does not exist. */
export class UnknownAnalyzerError extends Error {}

/** The origin of an object: its kind and name, where it was read, and the codes its annotation suppresses. */
export function originOf(
  r: { kind: string; metadata: { name: string; namespace?: string; annotations?: Record<string, string> } },
  where?: { file: string; line: number },
): Origin {
  const o: Origin = { kind: r.kind, name: r.metadata.name };
  if (r.metadata.namespace) o.namespace = r.metadata.namespace;
  if (where) {
    o.file = where.file;
    o.line = where.line;
  }
  const suppressed = r.metadata.annotations?.[SUPPRESS_ANNOTATION];
  if (typeof suppressed === 'string' && suppressed) o.suppressedCodes = suppressed.split(',').map((c) => c.trim());
  return o;
}

/** `Kind namespace/name` (or `Kind name`): how istioctl names a message's resource. */
export function friendlyName(o: Origin): string {
  return o.namespace ? `${o.kind} ${o.namespace}/${o.name}` : `${o.kind} ${o.name}`;
}

// A Namespace's own namespace is itself, for the namespace filter.
function namespaceOf(o: Origin): string | undefined {
  return o.kind === 'Namespace' ? o.name : o.namespace;
}

// go-glob, as istioctl matches suppressions: `*` is the only wildcard.
function glob(pattern: string, subject: string): boolean {
  if (pattern === '*') return true;
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === subject;
  if (!subject.startsWith(parts[0]!)) return false;
  let at = parts[0]!.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const found = subject.indexOf(parts[i]!, at);
    if (found < 0) return false;
    at = found + parts[i]!.length;
  }
  const last = parts[parts.length - 1]!;
  return subject.length - at >= last.length && subject.endsWith(last);
}

export function reference(o: Origin): string | undefined {
  if (!o.file) return undefined;
  // istioctl gives no line for JSON files.
  return o.line && !o.file.endsWith('.json') ? `${o.file}:${o.line}` : o.file;
}

function messageString(m: Message): string {
  return `${m.type.level} [${m.type.code}]${originText(m)} ${m.text}`;
}

function originText(m: Message): string {
  if (!m.origin) return '';
  const ref = reference(m.origin);
  return ` (${friendlyName(m.origin)}${ref ? ` ${ref}` : ''})`;
}

function comparator(o: Origin): string {
  return `${o.kind}/${o.name}/${o.namespace ?? ''}`;
}

function compare(a: Message, b: Message): number {
  if (a.type.level !== b.type.level) return levelRank(a.type.level) - levelRank(b.type.level);
  if (a.type.code !== b.type.code) return a.type.code < b.type.code ? -1 : 1;
  if (!a.origin !== !b.origin) return a.origin ? 1 : -1;
  if (a.origin && b.origin && comparator(a.origin) !== comparator(b.origin)) return comparator(a.origin) < comparator(b.origin) ? -1 : 1;
  const sa = messageString(a);
  const sb = messageString(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/**
 * Runs the analyzers over every object and returns their messages, and `reported` (found before, e.g. schema errors
 * of files), filtered by namespace and suppressions, sorted and deduplicated.
 */
export function analyze(input: AnalysisInput, opts: AnalyzeOptions = {}, reported: Message[] = []): Message[] {
  let analyzers: readonly Analyzer[] = ANALYZERS;
  if (opts.analyzers && opts.analyzers.length > 0) {
    const unknown = opts.analyzers.filter((n) => !ANALYZERS.some((a) => a.name === n));
    if (unknown.length > 0) throw new UnknownAnalyzerError(`unknown analyzer ${unknown.map((n) => JSON.stringify(n)).join(', ')}: see the list with -L`);
    analyzers = ANALYZERS.filter((a) => opts.analyzers!.includes(a.name));
  }
  const found: Message[] = [...reported];
  const ctx: AnalysisContext = { ...input, report: (m) => found.push(m) };
  for (const a of analyzers) a.analyze(ctx);

  const kept = found.filter((m) => {
    if (!m.origin) return true;
    const ns = namespaceOf(m.origin);
    if (opts.namespace !== undefined && ns && ns !== opts.namespace) return false;
    const codes = m.origin.suppressedCodes ?? [];
    if (codes.includes('*') || codes.includes(m.type.code)) return false;
    return !(opts.suppressions ?? []).some((s) => s.code === m.type.code && glob(s.resource, friendlyName(m.origin!)));
  });
  kept.sort(compare);
  return kept.filter((m, i) => i === 0 || messageString(m) !== messageString(kept[i - 1]!));
}

export function atLeast(level: Level, threshold: Level): boolean {
  return levelRank(level) <= levelRank(threshold);
}

export type OutputFormat = 'log' | 'json' | 'yaml';

const COLORS: Record<Level, string> = { Info: '', Warning: '\u001b[33m', Error: '\u001b[1;31m' };

/** The messages as istioctl prints them (without the trailing newline). */
export function formatMessages(messages: Message[], format: OutputFormat, colorize = false): string {
  if (format === 'log') {
    return messages
      .map((m) => (colorize ? `${COLORS[m.type.level]}${m.type.level}\u001b[0m` : m.type.level) + ` [${m.type.code}]${originText(m)} ${m.text}`)
      .join('\n');
  }
  // Keys in the order Go's encoding/json writes a map's: sorted.
  const docs = messages.map((m) => {
    const ref = m.origin ? reference(m.origin) : undefined;
    return {
      code: m.type.code,
      documentationUrl: documentationUrl(m.type.code),
      level: m.type.level,
      message: m.text,
      ...(m.origin ? { origin: friendlyName(m.origin) } : {}),
      ...(ref ? { reference: ref } : {}),
    };
  });
  return format === 'json' ? JSON.stringify(docs, null, '\t') : stringify(docs).trimEnd();
}

/** `-L`: every analyzer with its description, as istioctl lists them. */
export function listAnalyzers(): string {
  return ANALYZERS.map((a) => `* ${a.name}:\n    ${a.description}\n`).join('');
}
