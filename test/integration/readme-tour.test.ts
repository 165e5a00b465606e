import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectFile } from '../../src/project-files.js';
import { TOUR_EXPECTS, codeBlocks, readmeBlock, shBlock, waitForLine } from '../support/readme.js';

const run = promisify(execFile);

describe('README', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'zkgate-readme-'));
  let gw: ReturnType<typeof spawn>;
  let base = '';
  let grpcTarget = '';
  /** Stands in for the repository root where a block writes files (gen/): proto, examples, clients linked. */
  const root = mkdtempSync(join(tmpdir(), 'zkgate-root-'));
  for (const dir of ['proto', 'examples', 'clients']) symlinkSync(projectFile(dir), join(root, dir));
  /** The block with the documented addresses replaced by the test gateway's. */
  const here = (script: string): string => script.replaceAll('127.0.0.1:8080', base.replace('http://', '')).replaceAll('127.0.0.1:9090', grpcTarget);
  const bash = async (script: string, opts: { cwd?: string; errexit?: boolean; timeout?: number } = {}): Promise<string> => {
    const { stdout, stderr } = await run('/bin/bash', [opts.errexit === false ? '-uo' : '-euo', 'pipefail', '-c', here(script)], {
      cwd: opts.cwd ?? projectFile('.'),
      timeout: opts.timeout ?? 60_000,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    return stdout + stderr;
  };

  before(async () => {
    // The quick start's `npm start` is `zkgate serve` with no ZooKeeper configured: the embedded default.
    gw = spawn(process.execPath, [projectFile('dist/src/cli/index.js'), 'serve', '--http-port', '0', '--grpc-port', '0'], {
      cwd,
      env: { ...process.env, ZKGATE_ZOOKEEPER: '', ZKGATE_CONFIG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const m = await waitForLine(gw.stdout as NodeJS.ReadableStream, /"httpPort":(\d+),"grpcPort":(\d+)/, 60_000);
    base = `http://127.0.0.1:${m[1]}`;
    grpcTarget = `127.0.0.1:${m[2]}`;
  });
  after(() => {
    if (gw.exitCode === null) gw.kill('SIGKILL');
    rmSync(cwd, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  });

  test('zkgate serve with nothing configured serves REST on an embedded local ZooKeeper', async () => {
    const ready = (await (await fetch(`${base}/readyz`)).json()) as { ready: boolean; tenants: { name: string }[] };
    assert.equal(ready.ready, true);
    assert.deepEqual(ready.tenants.map((t) => t.name), ['default']);
  });

  test('the curl tour works as written', async () => {
    const script = readmeBlock('## A tour with curl').replace('G=http://127.0.0.1:8080', `G=${base}`);
    const { stdout } = await run('/bin/bash', ['-euo', 'pipefail', '-c', script], { cwd, timeout: 30_000 });
    for (const expected of TOUR_EXPECTS) {
      assert.ok(stdout.includes(expected), `tour output has ${expected}:\n${stdout}`);
    }
    assert.deepEqual(readFileSync(join('/tmp', 'blob')), readFileSync('/bin/true'), 'raw bytes came back unchanged');
  });

  test('every sh block of README.md and docs/ is run by a test, or says here why not', () => {
    const ran = new Set([
      'README.md › ## A tour with curl',
      'README.md › ### The `zkgate` command',
      'docs/grpc.md › ### With generated stubs (Python, PHP, Go, …)',
      'docs/recipes.md › ## Leases, locks and elections',
      'docs/watch.md › ## Watch streams',
      'docs/recipes.md › ## Listings: leases, locks, elections, `ls -R`, children in pages',
      'docs/security.md › ### API keys and roles',
      'docs/websocket.md › ## Connecting',
      'docs/recipes.md › ### Client libraries: PHP and Python',
      'docs/recipes.md › ## Queues',
      'docs/recipes.md › ## Semaphores (Curator InterProcessSemaphoreV2 layout)',
      'docs/jobs.md › ## Run once from every crontab',
      'docs/jobs.md › ## Sharded jobs',
      'docs/jobs.md › ## A PHP cron worker',
      'docs/jobs.md › ## Deleting a job',
      'docs/registry.md › ## With curl',
      'docs/recipes.md › ## Read-write locks (Curator InterProcessReadWriteLock layout)',
      'docs/recipes.md › ## Barriers',
    ]);
    const elsewhere: Record<string, string> = {
      'README.md › ## Quick start (Debian 12, Node 20)': 'installs packages and starts the gateway: this suite starts it as `npm start` does; .ci/run is CI itself',
      'docs/grpc.md › ### With reflection (grpcurl and friends)': 'grpcurl is not packaged for Debian 12; test/integration/grpc-health-reflection.test.ts makes the same reflection calls',
      'docs/cli.md › ## A tour': 'run verbatim by test/integration/cli-client.test.ts',
      'docs/cluster.md › ## Deployment to copy': 'needs a Docker engine; test/integration/cluster-haproxy.test.ts starts the same compose.cluster.yaml services and deploy/haproxy.cfg without Docker',
      'docs/cluster.md › ### The topology test': 'it is test/integration/cluster-haproxy.test.ts itself, which the suite runs',
      'docs/registry.md › ## PHP: a provider and a consumer': 'a provider runs until stopped; test/integration/registry-php.test.ts runs the same two scripts (two providers, one SIGKILLed) against a test gateway',
    };
    const found = ['README.md', ...readdirSync(projectFile('docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)].flatMap((file) =>
      codeBlocks(file, 'sh').map((b) => `${file} › ${b.heading}`),
    );
    for (const where of found) assert.ok(ran.has(where) || where in elsewhere, `${where}: run it in readme-tour.test.ts or say why not`);
  });

  test('the zkgate command lines work as written', async () => {
    // `npm run build:src` is what `npm start` runs (the container test checks it skips an up-to-date
    // build); here it would rewrite dist/ under the feet of the tests running beside this one.
    const script = readmeBlock('### The `zkgate` command').replace('npm run build:src\n', '');
    const out = await bash(script, { timeout: 180_000 });
    assert.match(out, /^\d+\.\d+\.\d+$/m, 'a version line');
    assert.match(out, /--http-port <n>[\s\S]*default: 8080/);
    assert.match(out, /^zkg_[\w-]{43}$/m, 'a key');
  });

  test('leases, locks and elections work as written, and the PHP examples and client tests with them', async () => {
    const out = await bash(shBlock('## Leases, locks and elections', 0, 'docs/recipes.md'));
    for (const expected of ['"code":"LEASE_REVOKED"', '"fencingToken":', '"released":true', '"leader":true', '"value":"host1:9090"', '"resigned":true']) {
      assert.ok(out.includes(expected), `output has ${expected}:\n${out}`);
    }
    const php = await bash(codeBlocks('docs/recipes.md', 'sh').find((b) => b.text.includes('php examples/php/leader-worker.php'))?.text as string, { timeout: 60_000 });
    assert.match(php, /I'm the leader|I'm the new leader/);
    assert.equal(php.match(/^Stopped$/gm)?.length, 3, php);
    assert.match(php, /^nightly job, fencing token \d+$/m);
    const clients = await bash(codeBlocks('docs/recipes.md', 'sh').find((b) => b.text.includes('clients/php/tests/run.php'))?.text as string, { timeout: 60_000 });
    assert.match(clients, /# all passed/);
    assert.match(clients, /\nOK\n/);
  });

  test('queues work as written: put, peek, take, claim and ack, the PHP producer and worker', async () => {
    const out = await bash(shBlock('## Queues', 0, 'docs/recipes.md'), { timeout: 60_000 });
    for (const expected of ['"item":"qn-0000000000"', '"length":2,"claimed":0', '"mode":"at_most_once"', '"mode":"claim"', '"acked":true', '"code":"QUEUE_EMPTY"', 'PUT job-3', 'ACK w1 job-3']) {
      assert.ok(out.includes(expected), `output has ${expected}:\n${out}`);
    }
  });

  test('barriers work as written: set, wait, remove; a double barrier of two members, then three PHP members', async () => {
    const out = await bash(shBlock('## Barriers', 0, 'docs/recipes.md'), { timeout: 60_000 });
    for (const expected of ['"created":true', '"code":"BARRIER_TIMEOUT"', '"set":false', '"memberQty":2,"members":2', '"ready":true', '"left":true', 'ENTERED m3', 'LEFT m1']) {
      assert.ok(out.includes(expected), `output has ${expected}:\n${out}`);
    }
    assert.equal(out.match(/"left":true/g)?.length, 2, out);
  });

  test('semaphores work as written: curl and Python', async () => {
    const out = await bash(shBlock('## Semaphores (Curator InterProcessSemaphoreV2 layout)', 0, 'docs/recipes.md'));
    for (const expected of ['"semaphorePath":"/pools/db"', '"code":"PERMITS_NOT_ACQUIRED"', '"released":true', '"agreedMaxPermits":3']) {
      assert.ok(out.includes(expected), `output has ${expected}:\n${out}`);
    }
    assert.match(await bash(shBlock('## Semaphores (Curator InterProcessSemaphoreV2 layout)', 1, 'docs/recipes.md')), /^working with permit \/pools\/api\/leases\/_c_.*-lease-\d{10} token \d+$/m);
  });

  test('read-write locks work as written: curl and PHP', async () => {
    const heading = '## Read-write locks (Curator InterProcessReadWriteLock layout)';
    const out = await bash(shBlock(heading, 0, 'docs/recipes.md'));
    for (const expected of ['"mode":"read"', '"holderMode":"read"', '"field":"mode"', '"released":true']) {
      assert.ok(out.includes(expected), `output has ${expected}:\n${out}`);
    }
    assert.match(await bash(shBlock(heading, 1, 'docs/recipes.md')), /^writing with token \d+$/m);
  });

  test('the listings work as written: leases, locks under a path, ls -R, children in pages', async () => {
    const out = await bash(shBlock('## Listings: leases, locks, elections, `ls -R`, children in pages', 0, 'docs/recipes.md'));
    for (const expected of ['"kind":"lock"', '"lockPath":"/demo/jobs/nightly"', '"elections":[]', '{"path":"/demo","depth":0}', '"truncated":false', '"children":[{"name":"c"}]', '"total":3']) {
      assert.ok(out.includes(expected), `output has ${expected}:\n${out}`);
    }
  });

  test('jobs work as written: one of three crontabs runs the trigger, shards move between members', async () => {
    const once = await bash(shBlock('## Run once from every crontab', 0, 'docs/jobs.md'));
    assert.equal(once.match(/: runs 2026-11-30T02:00Z \(attempt 1\)/g)?.length, 1, once);
    assert.equal(once.match(/skips: .*already succeeded \(attempt 1 by web1\)/g)?.length, 2, once);
    assert.match(once, /"state":"succeeded","claimer":"web1","attempt":1,"message":"42 mails sent"/);
    const shards = await bash(shBlock('## Sharded jobs', 0, 'docs/jobs.md'));
    for (const expected of ['"items":[],"pending":[4,5,6,7]', '"items":{"host-a":[0,1,2,3],"host-b":[4,5,6,7]}', '{"left":true,"released":[4,5,6,7]}', '"items":{"host-a":[0,1,2,3,4,5,6,7]}']) {
      assert.ok(shards.includes(expected), `output has ${expected}:\n${shards}`);
    }
    const php = await bash(shBlock('## A PHP cron worker', 0, 'docs/jobs.md'), { timeout: 60_000 });
    assert.deepEqual(php.trim().split('\n').slice(-2), ['5', '20'], php);
    const deleted = await bash(shBlock('## Deleting a job', 0, 'docs/jobs.md'));
    assert.deepEqual(deleted.trim().split('\n'), ['412', '{"name":"old-report","runs":0,"runningRuns":0,"members":0,"resumed":false}', '404'], deleted);
  });

  test('the service registry works as written: register, list, pick, update, deregister, long-poll', async () => {
    const out = await bash(shBlock('## With curl', 0, 'docs/registry.md'));
    for (const expected of ['"services":["orders"]', '["i-1","i-2"]', 'http://10.0.0.7:8080/api', '10.0.0.8', '{"id":"i-2","enabled":false,"version":1}', '"deregistered":true', '{"unchanged":true,"n":1}', '\n[]\n']) {
      assert.ok(out.includes(expected), `output has ${expected}:\n${out}`);
    }
  });

  test('watch streams work as written: SSE current state, long-poll', async () => {
    const out = await bash(shBlock('## Watch streams', 0, 'docs/watch.md'), { errexit: false });
    assert.match(out, /event: current\nid: \d+\ndata: \{"type":"current","path":"\/config\/app"/);
    assert.match(out, /X-Zkgate-Index: \d+/i);
  });

  test('gRPC from Python as written: protoc into gen/, the snippet, the example twice', async () => {
    const blocks = codeBlocks('docs/grpc.md', 'sh').filter((b) => b.heading === '### With generated stubs (Python, PHP, Go, …)');
    await bash(blocks[0]?.text as string, { cwd: root });
    const snippet = codeBlocks('docs/grpc.md', 'python').find((b) => b.text.includes('sys.path.insert(0, "gen")'))?.text as string;
    writeFileSync(join(root, 'lock_demo.py'), here(snippet));
    const { stdout } = await run('/usr/bin/python3', ['lock_demo.py'], { cwd: root, timeout: 30_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
    assert.match(stdout, /^\/locks\/job\/_c_\S+-lock-\d{10} \d+\nno leader\n$/);
    for (let i = 0; i < 2; i++) assert.match(await bash(blocks[1]?.text as string, { cwd: root }), /\{"step": "done"\}/);
  });

  test('WebSocket as documented: wsdump, the ws snippet and the websocket-client snippet', async () => {
    const dump = await bash(codeBlocks('docs/websocket.md', 'sh')[0]?.text as string);
    assert.match(dump, /"type":"welcome"/);
    assert.match(dump, /"type":"event","id":"cfg","event":\{"type":"current","path":"\/"/);
    // Both snippets print events until stopped: read until the subscription's current state, then stop.
    const untilEvent = (cmd: string, args: string[]): Promise<string> =>
      new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { cwd: projectFile('.'), stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        const t = setTimeout(() => {
          child.kill();
          reject(new Error(`${cmd}: no event within 20 s: ${out}`));
        }, 20_000);
        const onData = (d: Buffer): void => {
          out += d.toString();
          if (/current[^\n]*\n/.test(out)) {
            clearTimeout(t);
            child.kill();
            resolve(out);
          }
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
      });
    const js = here(codeBlocks('docs/websocket.md', 'js').find((b) => b.text.includes("from 'ws'"))?.text as string);
    assert.match(await untilEvent(process.execPath, ['--input-type=module', '-e', js]), /type: 'current'/);
    const py = here(codeBlocks('docs/websocket.md', 'python').find((b) => b.text.includes('import json, websocket'))?.text as string);
    assert.match(await untilEvent('/usr/bin/python3', ['-u', '-c', py]), /^current color=/m);
  });

  test('SIGTERM shuts the gateway and its embedded ZooKeeper down', async () => {
    const exited = new Promise<number | null>((r) => gw.once('exit', (code) => r(code)));
    gw.kill('SIGTERM');
    assert.equal(await exited, 0);
    const { stdout } = await run('/bin/bash', ['-c', `pgrep -f "[Q]uorumPeerMain ${cwd}" || true`]);
    assert.equal(stdout.trim(), '', 'no ZooKeeper left running from the temp dir');
  });
});
