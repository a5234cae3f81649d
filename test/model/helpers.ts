// Shared by the model tests: reading fixture YAML into resources, without the config loader (the translation is
// what is under test here, not file handling).
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { Resource } from '../../src/api/types.js';

export const FIXTURES = new URL('../../../test/fixtures/model/', import.meta.url);

export function readFixture(name: string): Resource[] {
  const text = readFileSync(new URL(name, FIXTURES), 'utf8');
  return parseYaml(text);
}

export function parseYaml(text: string): Resource[] {
  const out: Resource[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`fixture YAML: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as Resource | null;
    if (value !== null) out.push(value);
  }
  return out;
}
