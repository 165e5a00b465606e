/**
 * The security the operator sees, through the real `zkgate` command: keygen output that works as
 * config, the refusal to serve a public address without keys, the loud warning on loopback, TLS
 * on the listeners (Node's https client and curl with the test certificate), and secrets absent
 * from everything the process prints (stdout logs at trace level and stderr, including the
 * ZooKeeper C client's).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { spawnClean } from '../../src/zk/index.js';
import { request as httpsRequest } from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { projectFile } from '../../src/project-files.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { makeTestCert, type TestCert } from '../support/tls.js';
import { grpcClient } from '../support/grpc-client.js';
import { status, type ServiceError } from '@grpc/grpc-js';
import WebSocket from 'ws';

/** Opens `url` and resolves with the server's first message, or rejects with the refused upgrade's status. */
function wsFirstMessage(url: string, ca: Buffer, headers: Record<string, string>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ca, headers });
    ws.once('message', (d) => {
      resolve(JSON.parse(d.toString()) as Record<string, unknown>);
      ws.close();
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      reject(new Error(`HTTP ${res.statusCode}`));
    });
    ws.once('error', reject);
  });
}

const run = promisify(execFile);
const CLI = projectFile('dist/src/cli/index.js');

interface Served {
  readonly proc: ChildProcess;
  readonly out: () => string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Starts `zkgate serve` and resolves once it logs its port (or rejects with its output when it exits). */
function serve(args: string[], env: Record<string, string> = {}): Promise<Served> {
  const proc = spawnClean(process.execPath, [CLI, 'serve', '--http-port', '0', '--grpc-port', '0', ...args], {
    env: { ...process.env, ZKGATE_CONFIG: '', ZKGATE_ZOOKEEPER: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const collect = (d: Buffer): void => {
    text += d.toString('utf8');
  };
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      void stop();
      reject(new Error(`zkgate did not start:\n${text}`));
    }, 30_000);
    const onData = (): void => {
      const m = /"httpPort":(\d+)/.exec(text);
      if (!m) return;
      clearTimeout(t);
      proc.stdout?.off('data', onData);
      resolve({ proc, out: () => text, port: Number(m[1]), stop });
    };
    proc.stdout?.on('data', onData);
    // 'close', not 'exit': the output must be read to the end before it is judged.
    proc.once('close', (code) => {
      clearTimeout(t);
      reject(Object.assign(new Error(`zkgate exited with ${code}:\n${text}`), { code, text }));
    });
  });
}

function httpsGet(port: number, path: string, ca: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, ca, headers, servername: 'localhost' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

let zk: ZkStandalone;
let cert: TestCert;
const dir = mkdtempSync(join(tmpdir(), 'zkgate-sec-cli-'));

before(async () => {
  zk = await startZkServer();
  cert = makeTestCert();
});
after(async () => {
  await zk?.close();
  rmSync(dir, { recursive: true, force: true });
  if (cert) rmSync(cert.dir, { recursive: true, force: true });
});

describe('bind policy', () => {
  test('cli › a non-loopback bind without API keys refuses to start and says how to allow it', async () => {
    const err = (await serve(['--bind', '0.0.0.0', '--zookeeper', zk.connectString]).then(
      (s) => s.stop().then(() => null),
      (e: { code?: number; text?: string }) => e,
    )) as { code?: number; text?: string } | null;
    assert.ok(err, 'it must not start');
    assert.equal(err.code, 2);
    assert.match(err.text ?? '', /refusing to listen on 0\.0\.0\.0 without API keys/);
    assert.match(err.text ?? '', /ZKGATE_ALLOW_UNAUTHENTICATED_PUBLIC_BIND/);
  });

  test('cli › explicitly allowed (env or flag) it starts with a loud warning; loopback warns too', async () => {
    for (const [args, env] of [
      [['--bind', '0.0.0.0'], { ZKGATE_ALLOW_UNAUTHENTICATED_PUBLIC_BIND: '1' }],
      [['--bind', '0.0.0.0', '--allow-unauthenticated-public-bind'], {}],
    ] as [string[], Record<string, string>][]) {
      const s = await serve([...args, '--zookeeper', zk.connectString], env);
      await s.stop();
      assert.match(s.out(), /"level":40.*ANYONE WHO REACHES THE PORT IS AN ADMIN OF EVERY TENANT/);
    }
    const s = await serve(['--zookeeper', zk.connectString]);
    await s.stop();
    assert.match(s.out(), /"level":40.*NO API KEYS CONFIGURED/);
  });
});

describe('keys, TLS and secrets through the CLI', () => {
  test('cli › keygen output is valid config; HTTPS, WSS and gRPC over TLS with the key work, without it 401 / UNAUTHENTICATED; nothing secret is printed', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'keygen', '--tenant', 'acme', '--role', 'admin']);
    const key = (/^zkg_\S+$/m.exec(stdout) ?? [''])[0];
    assert.match(key, /^zkg_[A-Za-z0-9_-]{43}$/);
    const snippet = stdout.slice(stdout.indexOf('tenants:'));
    const digestPassword = `dg-${Date.now()}-secret`;
    const config = join(dir, 'zkgate.yaml');
    writeFileSync(
      config,
      `${snippet.replace('  - name: acme\n', `  - name: acme\n    chroot: /cli/acme\n    digest: { user: acme, password: ${digestPassword} }\n    nodeAcl: [{ scheme: auth, id: "", perms: cdrwa }]\n`)}` +
        stringify({ zookeeper: { connect: zk.connectString }, tls: { certFile: cert.certFile, keyFile: cert.keyFile }, log: { level: 'trace' } }),
    );
    const s = await serve(['--config', config, '--bind', '0.0.0.0']);
    try {
      assert.match(s.out(), /"tls":true,"auth":true/);
      assert.doesNotMatch(s.out(), /NO API KEYS/);
      const ok = await httpsGet(s.port, '/v1/nodes', cert.cert, { authorization: `Bearer ${key}` });
      assert.equal(ok.status, 200, ok.body);
      assert.equal(JSON.parse(ok.body).path, '/');
      assert.equal((await httpsGet(s.port, '/v1/nodes', cert.cert)).status, 401);
      assert.equal((await httpsGet(s.port, '/v1/nodes', cert.cert, { authorization: `Bearer ${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}` })).status, 401);
      // A real client: curl trusting only the test certificate.
      const { stdout: curlOut } = await run('curl', ['-sS', '--cacert', cert.certFile, '-H', `authorization: Bearer ${key}`, '-X', 'POST', '-H', 'content-type: application/json', '-d', '{"data":"over tls"}', `https://localhost:${s.port}/v1/nodes/tls-node`]);
      assert.equal(JSON.parse(curlOut).path, '/tls-node');
      // Plain HTTP to the TLS port gets no answer from the API.
      const plain = await fetch(`http://127.0.0.1:${s.port}/healthz`).then((r) => r.status, () => 0);
      assert.notEqual(plain, 200);
      // Without the certificate trusted the client refuses the server.
      await assert.rejects(run('curl', ['-sS', `https://localhost:${s.port}/healthz`]));
      // WebSocket over TLS (wss:) on the HTTPS port, authenticated on the upgrade.
      const welcome = await wsFirstMessage(`wss://localhost:${s.port}/v1/ws`, cert.cert, { authorization: `Bearer ${key}` });
      assert.deepEqual([welcome.type, welcome.tenant], ['welcome', 'acme']);
      await assert.rejects(wsFirstMessage(`wss://localhost:${s.port}/v1/ws`, cert.cert, {}), /HTTP 401/);
      // The gRPC listener: TLS with the same certificate, the same key.
      const grpcPort = Number((/"grpcPort":(\d+)/.exec(s.out()) ?? [])[1]);
      const g = grpcClient(grpcPort, { ca: cert.cert, apiKey: key });
      const anon = grpcClient(grpcPort, { ca: cert.cert });
      try {
        const got = await g.unary<{ data: Buffer }>('Znodes', 'Get', { path: '/tls-node' });
        assert.equal(Buffer.from(got.data).toString(), 'over tls');
        await assert.rejects(anon.unary('Znodes', 'Get', { path: '/tls-node' }), (e: ServiceError) => e.code === status.UNAUTHENTICATED);
      } finally {
        g.close();
        anon.close();
      }
    } finally {
      await s.stop();
    }
    const printed = s.out();
    assert.ok(printed.split('\n').length >= 5, `the gateway logged (${printed.length} chars)`);
    assert.ok(!printed.includes(key), 'the API key is never printed');
    assert.ok(!printed.includes(key.slice(4, 20)), 'not even part of it');
    assert.ok(!printed.includes(digestPassword), 'the digest password is never printed');
  });
});
