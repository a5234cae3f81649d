// What the generators of built-in kinds' data (gen-kube-fields.mjs, gen-kube-openapi.mjs) share: finding the
// @kubernetes/client-node model of a registry type, and running as a script that writes or checks its output.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The registry's built-in types (entries without CRD printer columns: custom resources always have them), each
 * version with the name of its client-node model: `<Version><Kind>`, or `<Group><Version><Kind>` where two groups
 * share a kind (CoreV1Event).
 */
export function builtInModels(models, RESOURCE_TYPES, groupVersion) {
  const out = [];
  for (const t of RESOURCE_TYPES.filter((t) => t.printerColumns === undefined)) {
    for (const v of t.versions) {
      const apiVersion = groupVersion(t.group, v);
      const prefix = t.group === '' ? 'Core' : t.group[0].toUpperCase() + t.group.slice(1, t.group.indexOf('.') < 0 ? undefined : t.group.indexOf('.'));
      const base = `${v[0].toUpperCase()}${v.slice(1)}${t.kind}`;
      const model = [`${prefix}${base}`, base].find((n) => Array.isArray(models[n]?.attributeTypeMap));
      if (!model) throw new Error(`no client-node model for ${apiVersion} ${t.kind}`);
      out.push({ apiVersion, kind: t.kind, model });
    }
  }
  return out;
}

/** When `moduleUrl` is the script being run: writes `generate()`'s text to `output`, or with --check fails if it differs. */
export async function runGenerator(moduleUrl, output, generate) {
  if (!process.argv[1] || fileURLToPath(moduleUrl) !== process.argv[1]) return;
  const text = await generate();
  if (!process.argv.includes('--check')) {
    writeFileSync(output, text);
    return;
  }
  if (readFileSync(output, 'utf8') !== text) {
    process.stderr.write(`${output} is stale: run node ${fileURLToPath(moduleUrl)}\n`);
    process.exit(1);
  }
}
