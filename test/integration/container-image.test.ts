/**
 * The container image without a Docker engine: its file set is built from exactly what the
 * Dockerfile and .dockerignore select (test/support/dockerfile.ts runs the same RUN steps, the
 * same `npm ci --omit=dev`, in a temporary directory), then started the ways the Dockerfile's
 * `docker run` line and compose.yaml start it, checked with their health checks, and given the
 * README's curl tour. The one slow part is `npm ci --omit=dev` compiling the zookeeper addon.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { projectFile, projectRoot } from '../../src/project-files.js';
import { buildImage, filesBelow, type Stage } from '../support/dockerfile.js';
import { TOUR_EXPECTS, readmeBlock } from '../support/readme.js';
import { eventually } from '../support/test-gateway.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';

const run = promisify(execFile);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** `-e NAME=value` pairs of the `docker run` line in the Dockerfile's header comment. */
function dockerRunEnv(dockerfile: string): Record<string, string> {
  const line = dockerfile.split('\n').find((l) => /^#\s+docker run .*ZKGATE_ALLOW_UNAUTHENTICATED_PUBLIC_BIND/.test(l));
  assert.ok(line, 'the Dockerfile documents a dev-mode docker run line');
  return Object.fromEntries([...line.matchAll(/-e (\w+)=(\S+)/g)].map((m) => [m[1] as string, m[2] as string]));
}

interface ComposeService {
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
}

interface Started {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly env: Record<string, string>;
  output(): string;
  stop(): Promise<void>;
}

describe('container image (built from the Dockerfile and .dockerignore, no Docker engine)', () => {
  const out = mkdtempSync(join(tmpdir(), 'zkgate-image-'));
  const dockerfile = readFileSync(projectFile('Dockerfile'), 'utf8');
  let stages: Map<string, Stage>;
  let final: Stage;
  let zk: ZkStandalone;
  const running: Started[] = [];
  const skipped: string[] = [];

  before(async () => {
    const t0 = Date.now();
    zk = await startZkServer();
    stages = await buildImage(dockerfile, {
      contextDir: projectRoot(),
      outDir: out,
      // The base images' OS packages (a compiler for the addon) are on this machine already; never
      // run apt-get here (its `rm -rf /var/lib/apt/lists/*` would empty this machine's package lists).
      skipRun: (cmd) => {
        if (!/^apt-get\b/.test(cmd)) return false;
        skipped.push(cmd);
        return true;
      },
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? out, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' },
      onRun: (stage, cmd) => console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s ${stage}: ${cmd.slice(0, 60)}`),
    });
    final = stages.get('final') as Stage;
  });
  after(async () => {
    for (const s of running) await s.stop();
    await zk?.close();
    rmSync(out, { recursive: true, force: true });
  });

  /** Starts the runtime stage as a container would: its ENTRYPOINT, `cmd`, its ENV plus `env`. */
  async function start(cmd: string[], env: Record<string, string>): Promise<Started> {
    const port = await freePort();
    const fullEnv = { PATH: process.env.PATH ?? '', ...final.env, ...env, ZKGATE_HTTP_PORT: String(port), ZKGATE_GRPC_PORT: String(await freePort()) };
    const [exe, ...args] = [...final.entrypoint, ...cmd];
    assert.equal(exe, 'node');
    const proc = spawn(process.execPath, args, { cwd: join(final.root, final.workdir), env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    proc.stdout?.on('data', (d: Buffer) => (text += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (text += d.toString()));
    const started: Started = {
      proc,
      port,
      env: fullEnv,
      output: () => text,
      stop: async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      },
    };
    running.push(started);
    return started;
  }

  /** Runs a health check's CMD (exec form) with the container's environment; true when it exits 0. */
  async function healthy(check: string[], env: Record<string, string>): Promise<boolean> {
    const [exe, ...args] = check;
    assert.equal(exe, 'node');
    try {
      await run(process.execPath, args, { env, timeout: 5000 });
      return true;
    } catch {
      return false;
    }
  }

  test('the RUN steps skipped install only OS packages this machine has', async () => {
    assert.equal(skipped.length, 1, skipped.join('\n'));
    const m = /apt-get install -y --no-install-recommends ([\w+. -]+?)\s+&&/.exec(skipped[0] as string);
    assert.ok(m, skipped[0]);
    for (const pkg of (m[1] as string).trim().split(/\s+/)) await run('dpkg', ['-s', pkg]);
  });

  test('the runtime stage holds the compiled src, production dependencies, contracts, docs and the console only', () => {
    const root = join(final.root, final.workdir);
    assert.deepEqual(readdirSync(root).sort(), ['dist', 'docs', 'node_modules', 'openapi.yaml', 'package.json', 'proto', 'ui']);
    assert.deepEqual(readdirSync(join(root, 'dist')), ['src']);
    assert.ok(filesBelow(join(root, 'dist', 'src')).includes('cli/index.js'));
    for (const dev of ['typescript', 'fast-check', 'ajv', '@balena/dockerignore']) {
      assert.throws(() => statSync(join(root, 'node_modules', dev)), `dev dependency ${dev} is not in the image`);
    }
    assert.ok(statSync(join(root, 'node_modules', 'zookeeper', 'build', 'Release', 'zookeeper.node')).isFile());
  });

  test('npm start compiles nothing when nothing changed (the compile stage, built again)', async () => {
    const compile = stages.get('compile') as Stage;
    const dir = join(compile.root, compile.workdir, 'dist', 'src');
    const before = new Map(filesBelow(dir).map((f) => [f, statSync(join(dir, f)).mtimeMs]));
    const start = JSON.parse(readFileSync(projectFile('package.json'), 'utf8')).scripts.start as string;
    const compileStep = start.split('&&')[0]?.trim() as string;
    assert.match(compileStep, /^tsc -b /, 'npm start compiles with tsc -b (skips an up-to-date build)');
    const { stdout } = await run('npx', [...compileStep.split(/\s+/), '--verbose'], { cwd: join(compile.root, compile.workdir) });
    assert.match(stdout, /up to date/);
    const after = new Map(filesBelow(dir).map((f) => [f, statSync(join(dir, f)).mtimeMs]));
    assert.deepEqual(after, before, 'no output file rewritten');
  });

  test("the Dockerfile's dev-mode docker run line starts and passes the image's HEALTHCHECK; without the flag it refuses", async () => {
    const env: Record<string, string> = { ...dockerRunEnv(dockerfile), ZKGATE_ZOOKEEPER: zk.connectString };
    const gw = await start(final.cmd, env);
    await eventually(() => healthy(final.healthcheck, gw.env), 30_000, `HEALTHCHECK to pass; output:\n${gw.output()}`);
    const { ZKGATE_ALLOW_UNAUTHENTICATED_PUBLIC_BIND: _flag, ...withoutFlag } = env;
    const refused = await start(final.cmd, withoutFlag);
    const code = await new Promise((r) => refused.proc.once('exit', r));
    assert.equal(code, 2);
    assert.match(refused.output(), /API key|allow-unauthenticated-public-bind/i);
    await gw.stop();
  });

  test("compose.yaml's gateway command line starts, passes its health check, and serves the README tour", async () => {
    const compose = parseYaml(readFileSync(projectFile('compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
    const svc = compose.services.zkgate1 as ComposeService;
    assert.ok(svc.command && svc.environment && svc.healthcheck, 'compose gateway has command, environment and healthcheck');
    assert.equal(svc.healthcheck.test[0], 'CMD');
    const gw = await start(svc.command, { ...svc.environment, ZKGATE_ZOOKEEPER: zk.connectString });
    await eventually(() => healthy(svc.healthcheck?.test.slice(1) as string[], gw.env), 30_000, `compose healthcheck to pass; output:\n${gw.output()}`);
    const script = readmeBlock('## A tour with curl').replace('G=http://127.0.0.1:8080', `G=http://127.0.0.1:${gw.port}`);
    const { stdout } = await run('/bin/bash', ['-euo', 'pipefail', '-c', script], { cwd: out, timeout: 30_000 });
    for (const expected of TOUR_EXPECTS) assert.ok(stdout.includes(expected), `tour output has ${expected}:\n${stdout}`);
    const docs = await fetch(`http://127.0.0.1:${gw.port}/docs/errors`);
    assert.equal(docs.status, 200, 'docs/ ships in the image');
  });
});
