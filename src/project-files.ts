/** Finds files shipped with the package (openapi.yaml, proto/, docs/) from src/ or dist/src/. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The package root: the nearest ancestor of this module holding package.json. */
export function projectRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('zkgate: cannot find the package root');
    dir = up;
  }
  root = dir;
  return dir;
}

/** Absolute path of a file relative to the package root. */
export function projectFile(rel: string): string {
  return join(projectRoot(), rel);
}
