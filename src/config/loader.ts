// Loads Kubernetes-style configuration (multi-document YAML, JSON, `kind: List`) from files, directories and stdin,
// validates every object and reports each problem at the line/column of the YAML node it is about. One bad document
// never stops the others: it is reported and skipped.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseAllDocuments, type Document, type Node } from 'yaml';
import { displayName, resourceKey, type Resource } from '../api/types.js';
import { isRecord } from '../api/schemas/common.js';
import { typeOf, type ResourceType } from '../api/kinds.js';
import { formatPath, validateResource, type FieldValidation, type IssuePath } from '../api/validation.js';

/** 1-based position; line 0/column 0 mean "the file as a whole" (e.g. it could not be read). */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

export interface ConfigIssue {
  severity: 'error' | 'warning';
  location: SourceLocation;
  /** `Kind namespace/name` of the object the issue is about, when known. */
  object?: string;
  /** The same, as fields (the name may be missing from a broken object). */
  subject?: ObjectRef;
  /** Field path inside the object, e.g. `spec.rules[0].from[0].source.principals`. */
  path?: string;
  message: string;
  /** A field the kind does not declare; `message` is kube-apiserver's `unknown field "spec.x"`, which names it. */
  unknownField?: true;
}

export interface LoadedObject {
  resource: Resource;
  /** Where the object's document (or `kind: List` item) starts. */
  location: SourceLocation;
  /** Where a field of the object (a path into it, e.g. `['spec', 'hosts', 0]`) is written; undefined if it is not. */
  fieldLocation(path: IssuePath): SourceLocation | undefined;
}

export interface ObjectRef {
  kind: string;
  namespace?: string;
  name?: string;
}

/**
 * An object of a kind the registry serves but the mesh does not read (ConfigMap, Secret, Istio's Gateway, Sidecar…),
 * as written: checked for unknown fields only.
 */
export interface OtherObject {
  raw: Record<string, unknown>;
  type: ResourceType;
  location: SourceLocation;
}

export interface LoadResult {
  /** Objects of the kinds the mesh reads, without errors. */
  objects: LoadedObject[];
  issues: ConfigIssue[];
  /** Objects of the registry's other kinds, without errors. */
  others: OtherObject[];
}

/** `FILE:LINE:COL: error: Kind ns/name: path: message` (parts that are unknown are left out). */
export function formatIssue(i: ConfigIssue): string {
  const where = i.location.line > 0 ? `${i.location.file}:${i.location.line}:${i.location.column}` : i.location.file;
  const subject = [i.object, i.path].filter((s) => s).join(': ');
  return `${where}: ${i.severity}: ${subject ? `${subject}: ` : ''}${i.message}`;
}

const STDIN_NAME = '<stdin>';
const CONFIG_EXTENSIONS = ['.yaml', '.yml', '.json'];

/** kubectl's `--validate`: what unknown fields are (errors that keep the object out, warnings, or nothing). */
export type ValidateMode = 'strict' | 'warn' | 'ignore';

export interface ParseOptions {
  /** Namespace of namespaced objects that name none (kubectl's `-n`); default `default`. */
  defaultNamespace?: string;
  /** Unknown fields; default `strict`, as kubectl and kube-apiserver refuse them. */
  validate?: ValidateMode;
  /**
   * An apiVersion/kind the registry does not serve: an `error`, as `kubectl apply` fails to map it (the default), or
   * a `warning` and the object skipped, for readers of the mesh's configuration that meet whole manifests.
   */
  unknownKinds?: ConfigIssue['severity'];
}

const FIELD_VALIDATION: Record<ValidateMode, FieldValidation> = { strict: 'Strict', warn: 'Warn', ignore: 'Ignore' };

/** Parses one text holding YAML documents (separated by `---`) or JSON; never throws. */
export function parseText(text: string, file: string, opts: ParseOptions = {}): LoadResult {
  return withDuplicatesResolved(parseDocuments(text, file, opts));
}

export interface LoadOptions extends ParseOptions {
  /** How a file named on its own that holds nothing is reported (a file found in a directory: always a warning). */
  emptyFile?: ConfigIssue['severity'];
}

/**
 * Loads files, directories (recursively: *.yaml, *.yml, *.json in sorted order) and `-` (stdin). A path that cannot
 * be read is an error issue, not an exception, so one typo does not hide the rest of the configuration.
 */
export async function loadPaths(paths: string[], stdin?: NodeJS.ReadableStream, opts: LoadOptions = {}): Promise<LoadResult> {
  const emptyFile = opts.emptyFile ?? 'error';
  const all: LoadResult = { objects: [], issues: [], others: [] };
  const add = (r: LoadResult) => {
    all.objects.push(...r.objects);
    all.issues.push(...r.issues);
    all.others.push(...r.others);
  };
  for (const p of paths) {
    if (p === '-') {
      add(withEmptyNoted(parseDocuments(await readStream(stdin ?? process.stdin), STDIN_NAME, opts), STDIN_NAME, emptyFile));
      continue;
    }
    // kubectl reads -f URLs; Ambit does not fetch anything, and "no such file" would hide why.
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) {
      all.issues.push(fileIssue(p, 'cannot read: URLs are not read; download the file and pass its path'));
      continue;
    }
    let files: string[];
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(p)).isDirectory();
      files = isDirectory ? await configFilesUnder(p) : [p];
    } catch (err) {
      all.issues.push(fileIssue(p, `cannot read: ${errorText(err)}`));
      continue;
    }
    if (files.length === 0) all.issues.push({ ...fileIssue(p, `no ${CONFIG_EXTENSIONS.map((e) => `*${e}`).join(', ')} files found`), severity: 'warning' });
    for (const f of files) {
      let text: string;
      try {
        text = await readFile(f, 'utf8');
      } catch (err) {
        all.issues.push(fileIssue(f, `cannot read: ${errorText(err)}`));
        continue;
      }
      // A file named on its own that holds nothing is a mistake; an empty file among a directory's may be a placeholder.
      add(withEmptyNoted(parseDocuments(text, f, opts), f, isDirectory ? 'warning' : emptyFile));
    }
  }
  return withDuplicatesResolved(all);
}

/** A file with no document (empty, only comments or only `---`) is reported, rather than silently applying nothing. */
function withEmptyNoted(r: LoadResult, file: string, severity: ConfigIssue['severity']): LoadResult {
  if (r.objects.length > 0 || r.issues.length > 0 || r.others.length > 0) return r;
  return { objects: [], issues: [{ ...fileIssue(file, 'no objects found: the file is empty or holds only comments'), severity }], others: [] };
}

async function configFilesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: string[] = [];
  for (const e of entries) {
    const p = join(dir, e.name);
    const isDir = e.isDirectory() || (e.isSymbolicLink() && (await stat(p).catch(() => undefined))?.isDirectory());
    if (isDir) out.push(...(await configFilesUnder(p)));
    else if (CONFIG_EXTENSIONS.some((ext) => e.name.endsWith(ext))) out.push(p);
  }
  return out;
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'no such file or directory';
  if (e.code === 'EACCES') return 'permission denied';
  return e.message ?? String(err);
}

function fileIssue(file: string, message: string): ConfigIssue {
  return { severity: 'error', location: { file, line: 0, column: 0 }, message };
}

function parseDocuments(text: string, file: string, opts: ParseOptions): LoadResult {
  const result: LoadResult = { objects: [], issues: [], others: [] };
  const lineCounter = new LineCounter();
  const at = (offset: number): SourceLocation => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, column: col };
  };
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  // An empty or comment-only stream is an empty list of documents, not an error.
  if (!Array.isArray(docs)) return result;

  for (const doc of docs) {
    if (doc.errors.length > 0) {
      // A document with syntax errors is skipped as a whole: a partial object could silently drop a policy rule.
      for (const e of doc.errors) result.issues.push({ severity: 'error', location: at(e.pos[0]), message: `YAML syntax error: ${firstLine(e.message)}` });
      continue;
    }
    for (const w of doc.warnings) result.issues.push({ severity: 'warning', location: at(w.pos[0]), message: `YAML: ${firstLine(w.message)}` });
    if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) continue; // empty document
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      result.issues.push({ severity: 'error', location: at(doc.contents.range?.[0] ?? 0), message: `YAML: ${errorText(err)}` });
      continue;
    }
    if (isList(value)) {
      value.items.forEach((item, i) => addObject(result, item, doc, ['items', i], at, opts));
    } else {
      addObject(result, value, doc, [], at, opts);
    }
  }
  return result;
}

/** `kind: List` (what `kubectl get -o yaml` prints) wraps objects in `items`. */
function isList(v: unknown): v is { items: unknown[] } {
  return isRecord(v) && v.kind === 'List' && (v.apiVersion === 'v1' || v.apiVersion === undefined) && Array.isArray(v.items);
}

function addObject(result: LoadResult, raw: unknown, doc: Document, base: IssuePath, at: (offset: number) => SourceLocation, opts: ParseOptions): void {
  const defaultNamespace = opts.defaultNamespace ?? 'default';
  const location = at(nodeAt(doc, base).range?.[0] ?? 0);
  const { resource, issues, type, unknownKind } = validateResource(raw, defaultNamespace, FIELD_VALIDATION[opts.validate ?? 'strict']);
  if (unknownKind) {
    result.issues.push(unknownKindIssue(raw as Record<string, unknown>, location, issues[0]!.message, opts.unknownKinds ?? 'error', defaultNamespace));
    return;
  }
  const subject = objectRef(resource ?? raw, defaultNamespace);
  const located = issues.map((i) => {
    const issue: ConfigIssue = { severity: i.severity, location: at(nodeAt(doc, [...base, ...i.path], i.aboutKey).range?.[0] ?? 0), message: i.message };
    if (subject) {
      issue.object = displayName({ kind: subject.kind, metadata: subject });
      issue.subject = subject;
    }
    // kube's `unknown field "spec.x"` names the field itself.
    if (i.unknownField) issue.unknownField = true;
    else if (i.path.length > 0) issue.path = formatPath(i.path);
    return issue;
  });
  // Report in reading order, like a compiler, rather than in the order the schema happened to check fields.
  located.sort((a, b) => a.location.line - b.location.line || a.location.column - b.location.column);
  result.issues.push(...located);
  const fieldLocation = (path: IssuePath): SourceLocation | undefined => {
    const { node, resolved } = walk(doc, [...base, ...path]);
    return resolved === base.length + path.length && node.range ? at(node.range[0]) : undefined;
  };
  if (resource) result.objects.push({ resource, location, fieldLocation });
  else if (type && !type.model && !issues.some((i) => i.severity === 'error')) result.others.push({ raw: raw as Record<string, unknown>, type, location });
}

/**
 * An object whose apiVersion/kind the registry does not serve. As an error it is kubectl's own (cli-runtime's REST
 * mapping), naming the object as written (an absent namespace is "") and the file it came from.
 */
function unknownKindIssue(raw: Record<string, unknown>, location: SourceLocation, noMatch: string, severity: ConfigIssue['severity'], defaultNamespace: string): ConfigIssue {
  if (severity === 'warning') {
    const subject = objectRef(raw, defaultNamespace)!;
    return { severity, location, object: displayName({ kind: subject.kind, metadata: subject }), subject, message: `${noMatch}, skipped` };
  }
  const meta = isRecord(raw.metadata) ? raw.metadata : {};
  const text = (v: unknown) => JSON.stringify(typeof v === 'string' ? v : '');
  return {
    severity,
    location,
    message: `resource mapping not found for name: ${text(meta.name)} namespace: ${text(meta.namespace)} from ${JSON.stringify(location.file)}: ${noMatch}\nensure CRDs are installed first`,
  };
}

/** Kind, namespace and name, with the namespace defaulted as it will be once loaded; undefined if no kind. */
function objectRef(raw: unknown, defaultNamespace: string): ObjectRef | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const o = raw as { apiVersion?: unknown; kind?: unknown; metadata?: unknown };
  if (typeof o.kind !== 'string' || o.kind === '') return undefined;
  const meta = (typeof o.metadata === 'object' && o.metadata !== null ? o.metadata : {}) as { name?: unknown; namespace?: unknown };
  const name = typeof meta.name === 'string' && meta.name !== '' ? meta.name : undefined;
  const type = typeof o.apiVersion === 'string' ? typeOf(o.apiVersion, o.kind) : undefined;
  const explicit = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : undefined;
  // Only kinds we know are namespaced get kubectl's "default"; an unknown kind may be cluster-scoped.
  const namespace = type ? (type.namespaced ? (explicit ?? defaultNamespace) : undefined) : explicit;
  return { kind: o.kind, ...(name !== undefined ? { name } : {}), ...(namespace !== undefined ? { namespace } : {}) };
}

/**
 * The deepest node that exists along `path`: the offending node itself, or for a missing field the mapping that
 * should have held it. A `key:` with no value points at the key, since the empty value has no position of its own;
 * so does an issue about the key itself.
 */
function nodeAt(doc: Document, path: IssuePath, aboutKey = false): Node {
  return walk(doc, path, aboutKey).node;
}

/** nodeAt, and how many segments of `path` were found (all of them: the node is the field itself). */
function walk(doc: Document, path: IssuePath, aboutKey = false): { node: Node; resolved: number } {
  let node = doc.contents as Node;
  let resolved = 0;
  for (const [depth, seg] of path.entries()) {
    const current = isAlias(node) ? (node.resolve(doc) as Node | undefined) : node;
    if (!current) break;
    let next: Node | undefined;
    if (isMap(current)) {
      const pair = current.items.find((p) => isPair(p) && keyText(p.key) === String(seg));
      if (pair) {
        const value = pair.value as Node | null;
        const wantKey = aboutKey && depth === path.length - 1;
        next = !wantKey && value && !(isScalar(value) && value.value === null && value.source === '') ? value : (pair.key as Node);
      }
    } else if (isSeq(current) && typeof seg === 'number') {
      next = (current.items[seg] as Node | undefined) ?? undefined;
    }
    if (!next || !next.range) break;
    node = next;
    resolved++;
  }
  return { node, resolved };
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return undefined;
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.trim();
}

/** Same kind/namespace/name twice: a warning at the later copy, which replaces the earlier one (as `kubectl apply`). */
function withDuplicatesResolved(r: LoadResult): LoadResult {
  const lastIndex = new Map<string, number>();
  r.objects.forEach((o, i) => lastIndex.set(resourceKey(o.resource), i));
  const firstSeen = new Map<string, LoadedObject>();
  const issues = [...r.issues];
  const objects: LoadedObject[] = [];
  r.objects.forEach((o, i) => {
    const key = resourceKey(o.resource);
    const first = firstSeen.get(key);
    if (first) {
      issues.push({
        severity: 'warning',
        location: o.location,
        object: displayName(o.resource),
        message: `duplicate object, also defined at ${first.location.file}:${first.location.line}:${first.location.column}; the last definition wins`,
      });
    } else {
      firstSeen.set(key, o);
    }
    if (lastIndex.get(key) === i) objects.push(o);
  });
  return { objects, issues, others: r.others };
}
