// How the user can run this CLI again, for the commands it suggests: `ambit` when that name on PATH is this CLI (after
// `npm link` or a global install), else `node` with the path of this script (relative when under the working
// directory, as `npm start` runs it), so a suggestion can be pasted as printed.
import { realpathSync } from 'node:fs';
import { delimiter, join, relative } from 'node:path';

export function ambitCommand(script = process.argv[1] ?? '', path = process.env.PATH ?? '', cwd = process.cwd()): string {
  let self: string;
  try {
    self = realpathSync(script);
  } catch {
    return 'ambit';
  }
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    try {
      if (realpathSync(join(dir, 'ambit')) === self) return 'ambit';
    } catch {
      // Not in this directory.
    }
  }
  const rel = relative(cwd, self);
  return `node ${rel.startsWith('..') ? self : rel}`;
}
