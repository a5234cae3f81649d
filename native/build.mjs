#!/usr/bin/env node
// `npm install` hook: builds build/Release/ambit_native.node with node-gyp.
// node-gyp would otherwise download Node's headers from nodejs.org; when this Node installation
// ships its own headers of the same version (Debian/NodeSource packages, official tarballs, nvm), we
// point node-gyp at them so the build also works offline.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { spawnSync } from 'node:child_process';

const prefix = resolve(process.execPath, '..', '..');
const versionHeader = resolve(prefix, 'include', 'node', 'node_version.h');

function localHeadersMatch() {
  if (!existsSync(versionHeader)) return false;
  const text = readFileSync(versionHeader, 'utf8');
  const part = (name) => text.match(new RegExp(`#define NODE_${name}_VERSION (\\d+)`))?.[1];
  return `v${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}` === process.version;
}

// npm puts its bundled node-gyp on PATH for lifecycle scripts and names it in npm_config_node_gyp.
const gyp = process.env.npm_config_node_gyp;
const [command, args] = gyp ? [process.execPath, [gyp]] : ['node-gyp', []];
args.push('rebuild');
if (localHeadersMatch()) args.push(`--nodedir=${prefix}`);

const result = spawnSync(command, args, { stdio: 'inherit' });
if (result.error) {
  console.error(`native addon build: cannot run ${command}: ${result.error.message} (needs python3, make, g++)`);
  process.exit(1);
}
process.exit(result.status ?? 1);
