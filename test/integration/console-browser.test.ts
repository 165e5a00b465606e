/**
 * The web console in a real browser: Debian's chromium driven by playwright-core against a real
 * gateway (with API keys) and ZooKeeper. Loads /ui, enters a key, browses to a node, edits it with
 * compare-and-set, sees a change made by a Kazoo writer appear without reload, sees a lock's
 * holder and queue, and sees a read-only key get no edit controls and a refused edit. Screenshots
 * of the main views go to a temp dir, or to docs/screenshots with ZKGATE_UPDATE_SCREENSHOTS=1.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { generateApiKey, hashApiKey } from '../../src/core/index.js';
import { projectFile } from '../../src/project-files.js';
import { spawnClean } from '../../src/zk/spawn-clean.js';
import { eventually, zkAndGateway } from '../support/test-gateway.js';

const CHROMIUM = '/usr/bin/chromium';
const KEYS = { write: generateApiKey(), read: generateApiKey() };
const env = zkAndGateway({
  tenants: [
    {
      name: 'default',
      sessionTimeoutMs: 6000,
      apiKeys: [
        { name: 'console-writer', sha256: hashApiKey(KEYS.write), role: 'write' },
        { name: 'console-reader', sha256: hashApiKey(KEYS.read), role: 'read' },
      ],
    },
  ],
});
const shots = process.env.ZKGATE_UPDATE_SCREENSHOTS ? projectFile(join('docs', 'screenshots')) : mkdtempSync(join(tmpdir(), 'zkgate-ui-'));
let browser: Browser;

before(async () => {
  mkdirSync(shots, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // As the machine notes say: no sandbox as root, and nothing that phones home (the network is closed).
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await browser?.close();
  if (!process.env.ZKGATE_UPDATE_SCREENSHOTS) rmSync(shots, { recursive: true, force: true });
});

/** A REST call as the writer key. */
async function rest(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${env.g.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${KEYS.write}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : null };
}

async function openConsole(key: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${env.g.base}/ui`);
  await page.locator('#key-input').fill(key);
  await page.locator('#key-save').click();
  await page.locator('#live.on').waitFor({ timeout: 15_000 });
  return page;
}

/** Expands the tree down to `path` and selects it. */
async function browseTo(page: Page, path: string): Promise<void> {
  const parts = path.split('/').filter(Boolean);
  for (let i = 1; i < parts.length; i++) {
    const p = `/${parts.slice(0, i).join('/')}`;
    const row = page.locator(`.node-row[data-path="${p}"]`);
    await row.waitFor({ timeout: 10_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\ntree: ${await page.locator('#tree').innerHTML()}\nstatus: ${await page.locator('#status').textContent()}`);
    });
    if ((await row.locator('.toggle').textContent()) === '▸') await row.locator('.toggle').click();
  }
  await page.locator(`.node-row[data-path="${path}"] .name`).click();
  await eventually(async () => (await page.locator('#node-path').textContent()) === path, 10_000, `${path} selected`);
}

/** Sets a node's data with Kazoo (a client that is not the gateway). */
function kazooSet(path: string, data: string): Promise<void> {
  const script = [
    'import sys',
    'from kazoo.client import KazooClient',
    'zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=15)',
    'zk.set(sys.argv[2], sys.argv[3].encode()); zk.stop()',
  ].join('\n');
  const child = spawnClean('/usr/bin/python3', ['-c', script, env.zk.connectString, path, data], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`kazoo exited ${code}: ${err}`)))));
}

describe('console › in chromium', { skip: !existsSync(CHROMIUM) && 'chromium is not installed (.ci/run installs it)' }, () => {
  before(() => eventually(() => fetch(`${env.g.base}/readyz`).then((r) => r.ok, () => false), 20_000, 'the tenant session'));
  it('browse, edit with compare-and-set, live change from Kazoo, JSON and hex views', async () => {
    assert.equal((await rest('POST', '/v1/nodes/app/config', { data: '{"color":"red","size":3}', createParents: true })).status, 201);
    assert.equal((await rest('POST', '/v1/nodes/app/blob', { data: Buffer.from([0, 1, 2, 0xff, 0x41]).toString('base64'), encoding: 'base64' })).status, 201);
    const page = await openConsole(KEYS.write);
    assert.match((await page.locator('#who').textContent()) ?? '', /default · write/);
    await browseTo(page, '/app/config');
    assert.match((await page.locator('#node-kind').textContent()) ?? '', /^JSON/);
    assert.match((await page.locator('#node-data').textContent()) ?? '', /"color": "red",\n {2}"size": 3/);
    await page.screenshot({ path: join(shots, 'tree.png') });

    // Edit: saved only if still at version 0.
    await page.locator('#edit-area').fill('{"color":"blue"}');
    await page.locator('#save-btn').click();
    await eventually(async () => ((await rest('GET', '/v1/nodes/app/config')).body as { data: string }).data === '{"color":"blue"}', 10_000, 'the edit saved');
    await eventually(async () => (await page.locator('#node-version').textContent()) === '1', 10_000, 'version 1 shown');

    // A change by someone else (Kazoo) appears without reload.
    await kazooSet('/app/config', '{"color":"green"}');
    await eventually(async () => /green/.test((await page.locator('#node-data').textContent()) ?? ''), 10_000, 'the Kazoo write shown live');
    assert.equal(await page.locator('#node-version').textContent(), '2');

    await browseTo(page, '/app/blob');
    assert.match((await page.locator('#node-kind').textContent()) ?? '', /binary \(hex\), 5 bytes/);
    assert.match((await page.locator('#node-data').textContent()) ?? '', /00 01 02 ff 41/);
    await page.close();
  });

  it('a stale compare-and-set from the console shows the conflict and changes nothing', async () => {
    await rest('POST', '/v1/nodes/cas', { data: 'v0' });
    const page = await openConsole(KEYS.write);
    await browseTo(page, '/cas');
    // The user starts editing; meanwhile another client writes. The live update shows the new
    // data but keeps the user's text and the version the edit is based on.
    await page.locator('#edit-area').fill('mine');
    await rest('PUT', '/v1/nodes/cas', { data: 'other writer', version: 0 });
    await eventually(async () => /other writer/.test((await page.locator('#node-data').textContent()) ?? ''), 10_000, 'the other write shown live');
    assert.equal(await page.locator('#edit-area').inputValue(), 'mine', 'the user\'s text is kept');
    await page.locator('#save-btn').click();
    await eventually(async () => /conflict/.test((await page.locator('#status').textContent()) ?? ''), 10_000, 'the conflict shown');
    assert.equal(((await rest('GET', '/v1/nodes/cas')).body as { data: string }).data, 'other writer', 'nothing overwritten');
    await page.close();
  });

  it('lock view: holder with fencing token and since when, queue in order, updated live', async () => {
    const grant = async (): Promise<string> => ((await rest('POST', '/v1/leases', { ttlMs: 60_000 })).body as { id: string }).id;
    const [a, b] = [await grant(), await grant()];
    const held = (await rest('POST', '/v1/locks/jobs/nightly', { leaseId: a, data: 'cron@host1' })).body as { fencingToken: string };
    const waiting = rest('POST', '/v1/locks/jobs/nightly', { leaseId: b, data: 'cron@host2', waitMs: 60_000 });
    const page = await openConsole(KEYS.write);
    await page.locator('#tabs button[data-tab="locks"]').click();
    await page.locator('#lock-path').fill('/jobs/nightly');
    await page.locator('#lock-inspect').click();
    await eventually(async () => (await page.locator('#lock-queue tr').count()) === 3, 10_000, 'holder and waiter in the queue');
    const holder = (await page.locator('#lock-holder').textContent()) ?? '';
    assert.match(holder, /cron@host1/);
    assert.ok(holder.includes(held.fencingToken), 'the fencing token is shown');
    assert.match(holder, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/, 'since when');
    await page.screenshot({ path: join(shots, 'locks.png') });
    await rest('DELETE', `/v1/leases/${a}`);
    await waiting;
    await eventually(async () => /cron@host2/.test((await page.locator('#lock-holder').textContent()) ?? ''), 10_000, 'the next holder shown live');
    await rest('DELETE', `/v1/leases/${b}`);
    await eventually(async () => /\(free\)/.test((await page.locator('#lock-holder').textContent()) ?? ''), 10_000, 'the release shown live');
    await page.close();
  });

  it('election view: leader and candidates in the recipe\'s order; leases view lists the leases and what they own', async () => {
    const grant = async (): Promise<string> => ((await rest('POST', '/v1/leases', { ttlMs: 60_000 })).body as { id: string }).id;
    const [a, b] = [await grant(), await grant()];
    await rest('POST', '/v1/elections/svc/master', { leaseId: a, value: 'host-a' });
    const waiting = rest('POST', '/v1/elections/svc/master', { leaseId: b, value: 'host-b', waitMs: 60_000 });
    const page = await openConsole(KEYS.write);
    await page.locator('#tabs button[data-tab="elections"]').click();
    await page.locator('#election-path').fill('/svc/master');
    await page.locator('#election-path').press('Enter');
    await eventually(async () => (await page.locator('#election-candidates tr').count()) === 3, 10_000, 'two candidates');
    assert.match((await page.locator('#election-leader').textContent()) ?? '', /host-a/);
    const rows = await page.locator('#election-candidates tr').allTextContents();
    assert.match(rows[1] ?? '', /host-a/);
    assert.match(rows[2] ?? '', /host-b/);
    await page.locator('#tabs button[data-tab="leases"]').click();
    await eventually(async () => /candidate \/svc\/master/.test((await page.locator('#leases').textContent()) ?? ''), 10_000, 'the leases and what they own');
    assert.ok(((await page.locator('#leases').textContent()) ?? '').includes(a));
    await rest('DELETE', `/v1/leases/${a}`);
    await waiting;
    await eventually(async () => /host-b/.test((await page.locator('#election-leader').textContent()) ?? ''), 10_000, 'the new leader shown live');
    await rest('DELETE', `/v1/leases/${b}`);
    await page.close();
  });

  it('a read-only key sees no edit controls, and the server refuses an edit anyway', async () => {
    await rest('POST', '/v1/nodes/ro', { data: 'keep' });
    const page = await openConsole(KEYS.read);
    assert.match((await page.locator('#who').textContent()) ?? '', /read/);
    await browseTo(page, '/ro');
    assert.equal(await page.locator('#save-btn').isVisible(), false);
    assert.equal(await page.locator('#delete-btn').isVisible(), false);
    const status = await page.evaluate(async (key) => {
      const r = await fetch('/v1/nodes/ro', { method: 'PUT', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{"data":"x"}' });
      return r.status;
    }, KEYS.read);
    assert.equal(status, 403);
    assert.equal(((await rest('GET', '/v1/nodes/ro')).body as { data: string }).data, 'keep');
    await page.screenshot({ path: join(shots, 'read-only.png') });
    await page.close();
  });

  it('the cluster view shows the tenant session and quota metrics; a wrong key is asked again', async () => {
    const page = await openConsole(KEYS.write);
    await page.locator('#tabs button[data-tab="cluster"]').click();
    await eventually(async () => /connected/.test((await page.locator('#tenants').textContent()) ?? ''), 10_000, 'tenant session shown');
    await eventually(async () => /zkgate_tenant_quota_used/.test((await page.locator('#metrics').textContent()) ?? ''), 10_000, 'metrics shown');
    await page.screenshot({ path: join(shots, 'cluster.png') });
    await page.close();
    const bad = await browser.newPage();
    await bad.goto(`${env.g.base}/ui/`);
    await bad.locator('#key-input').fill('zkg_not-a-real-key');
    await bad.locator('#key-save').click();
    await eventually(async () => /UNAUTHENTICATED/.test((await bad.locator('#status').textContent()) ?? ''), 10_000, 'the refusal shown');
    assert.equal(await bad.locator('#login').isVisible(), true);
    await bad.close();
  });
});
