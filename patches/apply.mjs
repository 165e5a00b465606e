#!/usr/bin/env node
/**
 * Applies patches/zookeeper+<version>.patch (then any zookeeper+<version>-<topic>.patch) to
 * node_modules/zookeeper and recompiles its addon.
 * Runs as the `postinstall` script, so `npm ci` / `npm install` leave a patched binding; see
 * patches/README.md for what the patch fixes and why.
 *
 * Idempotent: a marker file next to the addon records the hash of the patch it was built with,
 * so a second run (or `npm install` of another package) does nothing. Fails the install when
 * the installed `zookeeper` version has no patch here or the patch does not apply: a binding
 * upgrade must be looked at, not silently run unpatched.
 *
 * Needs `patch` (GNU patch) and the addon's build tool chain (node-gyp, make, a C++ compiler),
 * which building the `zookeeper` package itself already needs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '..', 'package.json'));

const pkgJson = require.resolve('zookeeper/package.json');
const pkgDir = dirname(pkgJson);
const version = JSON.parse(readFileSync(pkgJson, 'utf8')).version;
const patchFile = join(here, `zookeeper+${version}.patch`);
if (!existsSync(patchFile)) {
  console.error(`patches/apply: no ${patchFile} for the installed zookeeper ${version}; port the patch (patches/README.md)`);
  process.exit(1);
}
// Then `zookeeper+<version>-<topic>.patch` files, in name order, over the main one: separate
// fixes stay separate files (each one sendable upstream on its own).
const patchFiles = [
  patchFile,
  ...readdirSync(here)
    .filter((f) => f.startsWith(`zookeeper+${version}-`) && f.endsWith('.patch'))
    .sort()
    .map((f) => join(here, f)),
];
const hasher = createHash('sha256');
for (const f of patchFiles) hasher.update(readFileSync(f));
const hash = hasher.digest('hex');
const marker = join(pkgDir, 'build', 'zkgate-patch.sha256');
const addon = join(pkgDir, 'build', 'Release', 'zookeeper.node');

if (existsSync(marker) && existsSync(addon) && readFileSync(marker, 'utf8').trim() === hash) {
  console.log(`patches/apply: zookeeper ${version} already patched and built`);
  process.exit(0);
}

for (const file of patchFiles) {
  const patch = (...args) => spawnSync('patch', ['-p1', '-d', pkgDir, '-i', file, ...args], { encoding: 'utf8' });
  if (patch('--dry-run', '-R', '-s', '-f').status === 0) {
    console.log(`patches/apply: ${file} already applied to the sources`);
  } else {
    const r = patch('--forward', '-s', '-f', '--no-backup-if-mismatch');
    if (r.status !== 0) {
      console.error(`patches/apply: ${file} does not apply to zookeeper ${version}:\n${r.stdout}${r.stderr}`);
      process.exit(1);
    }
    console.log(`patches/apply: applied ${file}`);
  }
}

// node-gyp as npm runs it for install scripts, else the copy bundled with npm.
const nodeGyp =
  process.env.npm_config_node_gyp ??
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
// `rebuild` configures afresh (a build/ directory copied from elsewhere has stale relative paths);
// the C client's objects from the package's own install are reused, only the addon recompiles.
const verb = 'rebuild';
console.log(`patches/apply: node-gyp ${verb} in ${pkgDir}`);
execFileSync(process.execPath, [nodeGyp, verb], { cwd: pkgDir, stdio: 'inherit' });
writeFileSync(marker, `${hash}\n`);
