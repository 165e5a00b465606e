/**
 * The `zkgate` client commands end to end: the real binary (dist/src/cli/index.js) as a child
 * process against a real gateway and ZooKeeper — znode commands, watch, leases, and `lock` /
 * `elect` running commands, including the loss case (the gateway's ZooKeeper session expired
 * while the command runs: the command is stopped and the exit code says so).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { spawnClean } from '../../src/zk/spawn-clean.js';
import { eventually, uniquePath, zkAndGateway } from '../support/test-gateway.js';
import { expireSession, freePorts } from '../support/zk-server.js';
import { projectFile } from '../../src/project-files.js';

const CLI = projectFile(join('dist', 'src', 'cli', 'index.js'));
const env = zkAndGateway({ tenants: [{ name: 'default', sessionTimeoutMs: 4000 }] });
const dir = mkdtempSync(join(tmpdir(), 'zkgate-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function start(args: readonly string[], url = env.g.base): ChildProcess {
  return spawnClean(process.execPath, [CLI, ...args], { env: { ...process.env, ZKGATE_URL: url }, stdio: ['ignore', 'pipe', 'pipe'] });
}

function finish(child: ChildProcess): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const zkgate = (...args: string[]): Promise<Run> => finish(start(args));

/** Appends a line to `file` from the shell, with the hold's fencing token. */
const logLine = (file: string, word: string): string => `echo "${word} $ZKGATE_FENCING_TOKEN" >> ${file}`;

describe('cli › znode commands', () => {
  it('create -p, get, set with compare-and-set, ls -R --stat, rm -r; refusals name their code', async () => {
    const p = uniquePath('cli');
    const created = await zkgate('create', `${p}/a/b`, 'hello', '-p');
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout.trim(), `${p}/a/b`);
    const got = await zkgate('get', `${p}/a/b`);
    assert.equal(got.stdout, 'hello\n');
    const asJson = JSON.parse((await zkgate('get', `${p}/a/b`, '--json')).stdout) as { data: string; stat: { version: number } };
    assert.deepEqual([asJson.data, asJson.stat.version], ['hello', 0]);

    const stale = await zkgate('set', `${p}/a/b`, 'x', '--version', '3');
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /BAD_VERSION/);
    assert.equal((await zkgate('get', `${p}/a/b`)).stdout, 'hello\n', 'a refused set changes nothing');
    assert.equal((await zkgate('set', `${p}/a/b`, 'world', '--version', '0')).stdout.trim(), 'version 1');

    const tree = await zkgate('ls', '-R', p, '--stat');
    const lines = tree.stdout.trim().split('\n');
    assert.deepEqual(
      lines.map((l) => l.split('\t')[0]),
      [`${p}/a`, `${p}/a/b`],
    );
    assert.match(lines[1] as string, /version=1 children=0 bytes=5/);
    const bounded = await zkgate('ls', '-R', p, '--max', '1');
    assert.equal(bounded.code, 1);
    assert.match(bounded.stderr, /more than 1 nodes/);

    assert.equal((await zkgate('rm', p)).code, 1, 'not empty');
    assert.equal((await zkgate('rm', '-r', p)).code, 0);
    const gone = await zkgate('get', p);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /NO_NODE/);
  });

  it('an unreachable gateway exits 69 with one line', async () => {
    const [closed] = await freePorts(1);
    const r = await finish(start(['get', '/x'], `http://127.0.0.1:${closed}`));
    assert.equal(r.code, 69);
    assert.match(r.stderr, /cannot reach the gateway/);
  });

  it('watch prints one JSON line per event', async () => {
    const p = uniquePath('cliwatch');
    await env.g.rest.json('POST', `/v1/nodes${p}`, { data: 'v0' });
    const child = start(['watch', p]);
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const first = JSON.parse((await lines.next()).value as string) as { type: string; data: string };
    assert.deepEqual([first.type, first.data], ['current', 'v0']);
    await env.g.rest.json('PUT', `/v1/nodes${p}`, { data: 'v1' });
    const next = JSON.parse((await lines.next()).value as string) as { type: string; data: string };
    assert.deepEqual([next.type, next.data], ['data_changed', 'v1']);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('close', r));
  });
});

describe('cli › leases', () => {
  it('grant, keepalive, get (with what it owns), revoke', async () => {
    const id = (await zkgate('lease', 'grant', '--ttl-ms', '120000')).stdout.trim();
    assert.match(id, /\./);
    const p = uniquePath('clilease');
    assert.equal((await zkgate('create', p, '--mode', 'ephemeral', '--lease', id)).code, 0);
    assert.match((await zkgate('lease', 'keepalive', id)).stdout, /\tactive\t/);
    const info = JSON.parse((await zkgate('lease', 'get', id, '--json')).stdout) as { owned: { path: string }[] };
    assert.deepEqual(info.owned.map((o) => o.path), [p]);
    assert.match((await zkgate('lease', 'revoke', id)).stdout, /\trevoked\t/);
    assert.equal((await zkgate('get', p)).code, 1, 'the ephemeral went with the lease');
    const again = await zkgate('lease', 'keepalive', id);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /LEASE_REVOKED/);
  });
});

describe('cli › lock and elect', () => {
  it('lock runs commands one at a time with rising fencing tokens; try-lock while held exits 75', async () => {
    const p = uniquePath('clilock');
    const log = join(dir, 'lock.log');
    const go = join(dir, 'lock.go');
    // Each holder stays until the test lets it go, so the try-lock below meets a held lock.
    const body = `${logLine(log, 'ENTER')}; while [ ! -e ${go} ]; do sleep 0.05; done; sleep 0.3; ${logLine(log, 'EXIT')}`;
    const a = finish(start(['lock', p, '--', 'sh', '-c', body]));
    const b = finish(start(['lock', p, '--', 'sh', '-c', `${body}; exit 7`]));
    await eventually(() => existsSync(log), 20_000, 'a holder');
    const miss = await zkgate('lock', p, '--wait-ms', '0', '--', 'true');
    assert.equal(miss.code, 75, miss.stderr);
    // Who holds it, since when, and who waits: one command.
    await eventually(async () => /^waiting /m.test((await zkgate('inspect', p)).stdout), 20_000, 'the second waiter');
    const who = (await zkgate('inspect', p)).stdout.split('\n');
    assert.match(who[0] as string, /^held by \/.*lock-\d{10} data=\S* fencingToken=\d+ since=\d{4}-\d\d-\d\dT/);
    assert.match(who[1] as string, /^waiting /);
    writeFileSync(go, '');
    const [ra, rb] = await Promise.all([a, b]);
    assert.deepEqual([ra.code, rb.code].sort(), [0, 7], 'each exits with its command\'s code');
    const events = readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split(' '));
    assert.deepEqual(events.map((e) => e[0]), ['ENTER', 'EXIT', 'ENTER', 'EXIT'], 'never two holders');
    const [t1, t2] = [BigInt(events[0]![1]!), BigInt(events[2]![1]!)];
    assert.ok(t2 > t1, `fencing tokens rise: ${t1} then ${t2}`);
    const lock = (await env.g.rest.json('GET', `/v1/locks${p}`)).body as { holder: unknown; queue: unknown[] };
    assert.deepEqual([lock.holder, lock.queue.length], [null, 0], 'released and nothing left queued');
  });

  it('elect runs the leader\'s command; the next candidate leads once it ends, with a higher term', async () => {
    const p = uniquePath('clielect');
    const log = join(dir, 'elect.log');
    const body = `echo "LEAD $ZKGATE_TERM" >> ${log}; sleep 1; echo "DONE $ZKGATE_TERM" >> ${log}`;
    const runs = await Promise.all([zkgate('elect', p, '--value', 'one', '--', 'sh', '-c', body), zkgate('elect', p, '--value', 'two', '--', 'sh', '-c', body)]);
    assert.deepEqual(runs.map((r) => r.code), [0, 0], runs.map((r) => r.stderr).join('\n'));
    const events = readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split(' '));
    assert.deepEqual(events.map((e) => e[0]), ['LEAD', 'DONE', 'LEAD', 'DONE']);
    assert.ok(BigInt(events[2]![1]!) > BigInt(events[0]![1]!), 'the term rises');
  });

  it('a lock lost while the command runs (session expired) stops the command and exits 76', async () => {
    const p = uniquePath('clilost');
    const log = join(dir, 'lost.log');
    const body = `trap 'echo TERM >> ${log}; exit 0' TERM; echo START >> ${log}; while :; do sleep 0.1; done`;
    const child = start(['lock', p, '--ttl-ms', '3000', '--grace-ms', '2000', '--json', '--', 'sh', '-c', body]);
    const run = finish(child);
    await eventually(() => existsSync(log), 20_000, 'the command to start');
    const session = env.g.running.gateway.tenant().session;
    await expireSession(env.zk.connectString, session.sessionId, session.sessionPassword);
    const r = await run;
    assert.equal(r.code, 76, r.stderr);
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['START', 'TERM'], 'the command got SIGTERM');
    const lost = r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string }).find((e) => e.event === 'lost');
    assert.ok(lost, 'the loss is reported');
    // The lock is free for the next holder.
    await eventually(async () => (await zkgate('lock', p, '--wait-ms', '0', '--', 'true')).code === 0, 20_000, 'the lock to be free again');
  });
});

describe('cli › docs/cli.md', () => {
  it('the built bin is executable (npx and npm link run it through a symlink, not through node)', () => {
    // tsc writes 0644; a fresh clone's `npx zkgate` then fails with "Permission denied" (exit 127).
    const mode = statSync(projectFile(join('dist', 'src', 'cli', 'index.js'))).mode;
    assert.equal(mode & 0o111, 0o111, `mode ${(mode & 0o777).toString(8)}`);
  });

  // Each of the tour's npx calls starts node and npm: at load 13-15 the whole took over 180 s.
  it('the tour runs verbatim from the repository root (npx zkgate)', { timeout: 300_000 }, async () => {
    const doc = readFileSync(projectFile(join('docs', 'cli.md')), 'utf8');
    const block = /## A tour[\s\S]*?```sh\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(block, 'docs/cli.md has a tour block');
    const script = `set -euo pipefail\n${block.replace('export ZKGATE_URL=http://127.0.0.1:8080', `export ZKGATE_URL=${env.g.base}`)}`;
    const sh = spawnClean('bash', ['-c', script], { cwd: projectFile('.'), stdio: ['ignore', 'pipe', 'pipe'] });
    const r = await finish(sh);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^\/app\/config$/m);
    assert.match(r.stdout, /^color=red$/m);
    assert.match(r.stdout, /^\/app\/config\tversion=1 /m);
    assert.match(r.stdout, /^fencing token \d+$/m);
    assert.match(r.stdout, /^free$/m);
    assert.match(r.stdout, /^leading in term \d+$/m);
    assert.match(r.stdout, /\trevoked\t/);
    assert.equal((await env.g.rest.json('GET', '/v1/nodes/app')).status, 404);
    assert.equal((await env.g.rest.json('GET', '/v1/nodes/workers')).status, 404, 'the ephemeral went with its lease, then its parent');
  });
});
