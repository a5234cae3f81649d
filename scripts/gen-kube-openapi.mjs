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
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtInModels, runGenerator } from './kube-models.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const OUTPUT = `${ROOT}openapi/kube-schemas.json`;
const require = createRequire(import.meta.url);

/** `V1PodSpec` → `V1.PodSpec`, so kubectl, which shows a schema by the part after its last dot, says `<PodSpec>`. */
export function schemaName(model) {
  const m = /^([A-Z][a-z]*)?(V\d+(?:alpha\d+|beta\d+)?)([A-Z].*)$/.exec(model);
  return m ? `${m[1] ?? ''}${m[2]}.${m[3]}` : model;
}

/**
 * What a model's declaration file says beyond its attributeTypeMap: the class's description (key ''), each field's,
 * and which fields are required (declared without `?`).
 */
const declarations = new Map();
function declaration(modelsDir, model) {
  if (declarations.has(model)) return declarations.get(model);
  let text = '';
  try {
    text = readFileSync(join(modelsDir, `${model}.d.ts`), 'utf8');
  } catch {
    // No declaration file: no descriptions.
  }
  const clean = (c) =>
    c
      .split('\n')
      .map((l) => l.replace(/^\s*\*\s?/, ''))
      .join(' ')
      .replace(/\s+/g, ' ')
      .replace(/\\(["'\\])/g, '$1')
      .trim();
  const descriptions = {};
  const cls = /\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*export declare class /.exec(text);
  if (cls) descriptions[''] = clean(cls[1]);
  for (const m of text.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*'([^']+)'\??:/g)) descriptions[m[2]] = clean(m[1]);
  const required = new Set([...text.matchAll(/^\s*'([^']+)':/gm)].map((m) => m[1]));
  const found = { descriptions, required };
  declarations.set(model, found);
  return found;
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
  for (const { apiVersion, kind, model } of builtInModels(models, RESOURCE_TYPES, groupVersion)) {
    ref(model);
    (kinds[apiVersion] ??= {})[kind] = schemaName(model);
  }
  while (pending.length > 0) {
    const model = pending.shift();
    const { descriptions, required: requiredNames } = declaration(modelsDir, model);
    const properties = {};
    const required = [];
    for (const a of models[model].attributeTypeMap) {
      const s = fieldSchema(a.type, a.format);
      // client-node keeps no description for a field of a model type; the model's own stands in for it.
      const description = descriptions[a.name] ?? (s.allOf ? declaration(modelsDir, a.type).descriptions[''] : undefined);
      properties[a.baseName] = description ? { ...s, description } : s;
      if (requiredNames.has(a.name)) required.push(a.baseName);
    }
    schemas[schemaName(model)] = {
      ...(descriptions[''] ? { description: descriptions[''] } : {}),
      type: 'object',
      ...(required.length ? { required } : {}),
      properties,
    };
  }
  const sorted = Object.fromEntries(Object.keys(schemas).sort().map((k) => [k, schemas[k]]));
  return `${JSON.stringify({ generatedFrom: `@kubernetes/client-node ${version}`, kinds, schemas: sorted })}\n`;
}

await runGenerator(import.meta.url, OUTPUT, generate);
