#!/usr/bin/env node
// Writes openapi/kube-schemas.json: OpenAPI v3 schemas of every built-in kind in the registry (src/api/kinds.ts) and
// of the types they use, for `kubectl explain` (src/apiserver/openapi.ts serves them). Types come from
// @kubernetes/client-node's generated models (each class lists its JSON fields, types and formats in a static
// `attributeTypeMap`), descriptions from the comments of their declaration files, which keep the descriptions of
// Kubernetes' own OpenAPI document.
//
// Why a generated file: loading client-node costs ~0.7 s and ~90 MB, which the local cluster's supervisor (where the
// API server runs) should not pay for a help text; the file is read when a client first asks for OpenAPI v3.
// test/apiserver/openapi.test.ts regenerates it and fails when the committed file differs.
//
// Usage: npm run build && node scripts/gen-kube-openapi.mjs [--check]
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const OUTPUT = `${ROOT}openapi/kube-schemas.json`;
const require = createRequire(import.meta.url);

/** `V1PodSpec` → `V1.PodSpec`, so kubectl, which shows a schema by the part after its last dot, says `<PodSpec>`. */
export function schemaName(model) {
  const m = /^([A-Z][a-z]*)?(V\d+(?:alpha\d+|beta\d+)?)([A-Z].*)$/.exec(model);
  return m ? `${m[1] ?? ''}${m[2]}.${m[3]}` : model;
}

/** The descriptions in a model's declaration file: the class's (key '') and each field's. */
function descriptions(modelsDir, model) {
  let text;
  try {
    text = readFileSync(join(modelsDir, `${model}.d.ts`), 'utf8');
  } catch {
    return {};
  }
  const out = {};
  const clean = (c) =>
    c
      .split('\n')
      .map((l) => l.replace(/^\s*\*\s?/, ''))
      .join(' ')
      .replace(/\s+/g, ' ')
      .replace(/\\(["'\\])/g, '$1')
      .trim();
  const cls = /\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*export declare class /.exec(text);
  if (cls) out[''] = clean(cls[1]);
  for (const m of text.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*'([^']+)'\??:/g)) out[m[2]] = clean(m[1]);
  return out;
}

export async function generate() {
  const models = await import('@kubernetes/client-node');
  const { RESOURCE_TYPES, groupVersion } = await import(`${ROOT}dist/src/api/kinds.js`);
  const version = require('@kubernetes/client-node/package.json').version;
  const modelsDir = join(dirname(require.resolve('@kubernetes/client-node')), 'gen', 'models');

  const schemas = {};
  const pending = [];
  const ref = (model) => {
    if (!Array.isArray(models[model]?.attributeTypeMap)) throw new Error(`client-node type ${model} is neither a scalar nor a model`);
    if (!(schemaName(model) in schemas)) {
      schemas[schemaName(model)] = null;
      pending.push(model);
    }
    return { $ref: `#/components/schemas/${schemaName(model)}` };
  };
  /** A field's schema in Kubernetes' OpenAPI v3 shapes. */
  const fieldSchema = (type, format) => {
    if (type === 'string') return format && format !== '' ? { type: 'string', format } : { type: 'string' };
    if (type === 'number') return format === 'double' || format === 'float' ? { type: 'number', format } : { type: 'integer', format: format || 'int32' };
    if (type === 'boolean') return { type: 'boolean' };
    if (type === 'Date' || type === 'V1MicroTime') return { type: 'string', format: 'date-time' };
    if (type === 'IntOrString') return { 'x-kubernetes-int-or-string': true };
    if (type === 'any') return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
    const list = /^Array<(.+)>$/.exec(type);
    if (list) return { type: 'array', items: fieldSchema(list[1], '') };
    const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
    if (map) return { type: 'object', additionalProperties: fieldSchema(map[1], '') };
    return { allOf: [ref(type)] };
  };

  const kinds = {};
  for (const t of RESOURCE_TYPES.filter((t) => t.printerColumns === undefined)) {
    for (const v of t.versions) {
      const apiVersion = groupVersion(t.group, v);
      const prefix = t.group === '' ? 'Core' : t.group[0].toUpperCase() + t.group.slice(1, t.group.indexOf('.') < 0 ? undefined : t.group.indexOf('.'));
      const base = `${v[0].toUpperCase()}${v.slice(1)}${t.kind}`;
      const model = [`${prefix}${base}`, base].find((n) => Array.isArray(models[n]?.attributeTypeMap));
      if (!model) throw new Error(`no client-node model for ${apiVersion} ${t.kind}`);
      ref(model);
      (kinds[apiVersion] ??= {})[t.kind] = schemaName(model);
    }
  }
  while (pending.length > 0) {
    const model = pending.shift();
    const docs = descriptions(modelsDir, model);
    const properties = {};
    const required = [];
    for (const a of models[model].attributeTypeMap) {
      const s = fieldSchema(a.type, a.format);
      // client-node keeps no description for a field of a model type; the model's own stands in for it.
      const description = docs[a.name] ?? (s.allOf ? descriptions(modelsDir, a.type)[''] : undefined);
      properties[a.baseName] = description ? { ...s, description } : s;
    }
    // The declaration file marks required fields without `?`.
    const dts = (() => {
      try {
        return readFileSync(join(modelsDir, `${model}.d.ts`), 'utf8');
      } catch {
        return '';
      }
    })();
    for (const m of dts.matchAll(/^\s*'([^']+)':/gm)) if (models[model].attributeTypeMap.some((a) => a.name === m[1])) required.push(models[model].attributeTypeMap.find((a) => a.name === m[1]).baseName);
    schemas[schemaName(model)] = {
      ...(docs[''] ? { description: docs[''] } : {}),
      type: 'object',
      ...(required.length ? { required } : {}),
      properties,
    };
  }
  const sorted = Object.fromEntries(Object.keys(schemas).sort().map((k) => [k, schemas[k]]));
  return `${JSON.stringify({ generatedFrom: `@kubernetes/client-node ${version}`, kinds, schemas: sorted })}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = await generate();
  if (process.argv.includes('--check')) {
    if (readFileSync(OUTPUT, 'utf8') !== text) {
      process.stderr.write(`${OUTPUT} is stale: run node scripts/gen-kube-openapi.mjs\n`);
      process.exit(1);
    }
  } else {
    writeFileSync(OUTPUT, text);
  }
}
