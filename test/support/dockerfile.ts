/**
 * Builds a Dockerfile's runtime file set without a Docker engine: reads the Dockerfile and
 * .dockerignore, copies exactly the build context they select, runs each stage's RUN steps in a
 * directory standing in for the stage's filesystem, and assembles the last stage from its COPY
 * lines. Only what a multi-stage Node image needs is understood (FROM … AS, WORKDIR, ENV, COPY
 * [--from], RUN, USER, EXPOSE, HEALTHCHECK, ENTRYPOINT, CMD); anything else fails the build, so a
 * Dockerfile change this reader does not follow cannot pass unnoticed.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join, posix, relative } from 'node:path';

// The package is CommonJS (module.exports = factory) while its types declare a default export.
const ignore = createRequire(import.meta.url)('@balena/dockerignore') as typeof import('@balena/dockerignore').default;

export interface Stage {
  readonly name: string;
  /** Stands in for the stage's filesystem root. */
  readonly root: string;
  workdir: string;
  readonly env: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
  healthcheck: string[];
}

export interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** The Dockerfile's instructions: comment lines dropped, continuation lines joined. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const whole = (pending + line).trim();
    pending = '';
    if (!whole) continue;
    const m = /^(\S+)\s*(.*)$/.exec(whole) as RegExpExecArray;
    out.push({ op: (m[1] as string).toUpperCase(), args: m[2] as string });
  }
  return out;
}

/** Every file of the build context `contextDir` that `.dockerignore` lets through, as relative paths. */
export function buildContext(contextDir: string): string[] {
  const rulesFile = join(contextDir, '.dockerignore');
  const rules = existsSync(rulesFile) ? readFileSync(rulesFile, 'utf8') : '';
  const ig = ignore().add(rules);
  // Docker skips an excluded directory unless an exception (!pattern) could re-include something in it.
  const hasExceptions = rules.split('\n').some((l) => l.trim().startsWith('!'));
  const files: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of readdirSync(join(contextDir, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!hasExceptions && ig.ignores(path)) continue;
        walk(path);
      } else if (!ig.ignores(path)) {
        files.push(path);
      }
    }
  };
  walk('');
  return files;
}

function jsonArray(args: string, what: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`${what}: expected the exec (JSON) form, got ${args}`);
  return parsed as string[];
}

function envArgs(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  const pairs = args.match(/[A-Za-z_][A-Za-z0-9_]*=("[^"]*"|\S*)/g);
  if (pairs) {
    for (const p of pairs) {
      const at = p.indexOf('=');
      out[p.slice(0, at)] = p.slice(at + 1).replace(/^"(.*)"$/, '$1');
    }
  } else {
    const m = /^(\S+)\s+(.*)$/.exec(args) as RegExpExecArray;
    out[m[1] as string] = m[2] as string;
  }
  return out;
}

/** Runs `cmd` with /bin/sh like Docker's shell form; rejects with its output on a non-zero exit. */
function sh(cmd: string, cwd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', cmd], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`RUN ${cmd}\nexited ${code}:\n${out.slice(-4000)}`))));
  });
}

export interface BuildOptions {
  readonly contextDir: string;
  /** Where the stages' stand-in filesystems go. */
  readonly outDir: string;
  /** RUN lines to skip (they install the base image's OS packages, which this machine has). */
  readonly skipRun: (cmd: string) => boolean;
  /** Environment of the RUN steps (the stage's ENV lines are added). */
  readonly env: Record<string, string>;
  /** Called once per RUN step, with its stage. */
  readonly onRun?: (stage: string, cmd: string) => void;
}

/**
 * Builds every stage; stages without dependencies on each other build in parallel, as BuildKit
 * does. Resolves with the stages by name (the last one is `final`).
 */
export async function buildImage(dockerfile: string, opts: BuildOptions): Promise<Map<string, Stage>> {
  const groups: { stage: Stage; steps: Instruction[] }[] = [];
  for (const ins of parseDockerfile(dockerfile)) {
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`FROM ${ins.args}: not understood`);
      const name = m[2] ?? `stage${groups.length}`;
      groups.push({ stage: { name, root: join(opts.outDir, name), workdir: '/', env: {}, entrypoint: [], cmd: [], healthcheck: [] }, steps: [] });
    } else {
      const g = groups.at(-1);
      if (!g) throw new Error(`${ins.op} before FROM`);
      g.steps.push(ins);
    }
  }
  const stages = new Map<string, Stage>();
  const done = new Map<string, Promise<Stage>>();
  const contextFiles = buildContext(opts.contextDir);
  const inStage = (s: Stage, path: string): string => join(s.root, posix.resolve(s.workdir, path));

  const build = async (stage: Stage, steps: Instruction[]): Promise<Stage> => {
    mkdirSync(stage.root, { recursive: true });
    for (const { op, args } of steps) {
      switch (op) {
        case 'WORKDIR':
          stage.workdir = posix.resolve(stage.workdir, args);
          mkdirSync(inStage(stage, '.'), { recursive: true });
          break;
        case 'ENV':
          Object.assign(stage.env, envArgs(args));
          break;
        case 'RUN':
          if (args.startsWith('[')) throw new Error(`RUN ${args}: only the shell form is understood`);
          if (opts.skipRun(args)) break;
          // RUN steps run on this machine, not in a container: package managers must never run here.
          if (/\bapt-get\b|\bapt\s/.test(args)) throw new Error(`RUN ${args}: would change this machine's packages`);
          opts.onRun?.(stage.name, args);
          await sh(args, inStage(stage, '.'), { ...opts.env, ...stage.env });
          opts.onRun?.(stage.name, `done: ${args}`);
          break;
        case 'COPY': {
          const words = args.split(/\s+/);
          const from = words[0]?.startsWith('--from=') ? (words.shift() as string).slice('--from='.length) : null;
          const dest = words.pop() as string;
          const toDir = dest.endsWith('/') || dest === '.' || words.length > 1;
          const source = from ? await (done.get(from) ?? Promise.reject(new Error(`COPY --from=${from}: no such stage`))) : null;
          for (const src of words) {
            const target = toDir ? join(inStage(stage, dest), basename(src)) : inStage(stage, dest);
            if (source) {
              cpSync(join(source.root, posix.resolve(source.workdir, src)), target, { recursive: true });
            } else if (src === '.') {
              for (const f of contextFiles) cpSync(join(opts.contextDir, f), join(inStage(stage, dest), f), { recursive: true });
            } else {
              const picked = contextFiles.filter((f) => f === src || f.startsWith(`${src}/`));
              if (picked.length === 0) throw new Error(`COPY ${src}: not in the build context (.dockerignore?)`);
              for (const f of picked) cpSync(join(opts.contextDir, f), join(target, relative(src, f)), { recursive: true });
            }
          }
          break;
        }
        case 'ENTRYPOINT':
          stage.entrypoint = jsonArray(args, 'ENTRYPOINT');
          break;
        case 'CMD':
          stage.cmd = jsonArray(args, 'CMD');
          break;
        case 'HEALTHCHECK': {
          const m = /\bCMD\s+(\[.*\])$/.exec(args);
          if (!m) throw new Error(`HEALTHCHECK ${args}: only CMD [exec form] is understood`);
          stage.healthcheck = jsonArray(m[1] as string, 'HEALTHCHECK');
          break;
        }
        case 'USER':
        case 'EXPOSE':
          break; // no effect on the file set
        default:
          throw new Error(`${op}: not understood by this reader; teach test/support/dockerfile.ts`);
      }
    }
    return stage;
  };

  for (const { stage, steps } of groups) {
    const p = build(stage, steps);
    done.set(stage.name, p);
    stages.set(stage.name, stage);
  }
  await Promise.all(done.values());
  const last = groups.at(-1)?.stage;
  if (last) stages.set('final', last);
  return stages;
}

/** Every file below `dir`, relative, for comparing file sets. */
export function filesBelow(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel))) {
      const path = rel ? `${rel}/${name}` : name;
      if (statSync(join(dir, path)).isDirectory()) walk(path);
      else out.push(path);
    }
  };
  if (existsSync(dir)) walk('');
  return out;
}
