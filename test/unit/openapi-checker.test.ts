/**
 * The openapi.yaml response checker that the integration tests rely on (test/support/openapi.ts):
 * it must itself accept what conforms and name what does not. Kept apart from the REST suites:
 * compiling every schema takes seconds of synchronous CPU, which would stall a gateway sharing
 * the process (its ZooKeeper sessions then suspend).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Stat } from '../../src/zk/index.js';
import { ContractError, checkResponse, contract } from '../support/openapi.js';

describe('the contract checker', () => {
  const stat: Stat = {
    czxid: '2',
    mzxid: '2',
    pzxid: '2',
    ctimeMs: 1,
    mtimeMs: 1,
    version: 0,
    cversion: 0,
    aversion: 0,
    ephemeralOwner: '0',
    dataLength: 0,
    numChildren: 0,
  };
  const json = new Headers({ 'content-type': 'application/json; charset=utf-8' });

  test('maps concrete URLs to path templates, the znode catch-all included', () => {
    const c = contract();
    assert.equal(c.templateOf('/v1/nodes/a/b/c'), '/v1/nodes/{path}');
    assert.equal(c.templateOf('/v1/nodes/a'), '/v1/nodes/{path}');
    assert.equal(c.templateOf('/v1/nodes'), '/v1/nodes');
    assert.equal(c.templateOf('/v1/nodes/'), '/v1/nodes');
    assert.equal(c.templateOf('/v1/children/x/y'), '/v1/children/{path}');
    assert.equal(c.templateOf('/v1/leases/gw-1.ab/keepalive'), '/v1/leases/{id}/keepalive');
    assert.equal(c.templateOf('/v1/leases/gw-1.ab'), '/v1/leases/{id}');
    assert.equal(c.templateOf('/nope'), undefined);
  });

  test('every schema in openapi.yaml compiles in strict mode', () => {
    assert.ok(contract().compileAll() > 50);
  });

  test('accepts a conforming response and names it', () => {
    const r = checkResponse('GET', '/v1/nodes/a/b', { status: 200, headers: json, body: { path: '/a/b', data: '', encoding: 'utf8', stat } });
    assert.equal(r.operationId, 'getNode');
    assert.equal(r.key, 'GET /v1/nodes/{path} 200');
  });

  test('rejects drift with the operation, the status and the Ajv errors', () => {
    assert.throws(
      () => checkResponse('GET', '/v1/nodes/a/b', { status: 200, headers: json, body: { path: '/a/b', data: '', encoding: 'utf8' } }),
      (e: Error) => e instanceof ContractError && /getNode/.test(e.message) && /200/.test(e.message) && /stat/.test(e.message),
    );
    assert.throws(
      () => checkResponse('GET', '/v1/nodes/a', { status: 200, headers: json, body: { path: '/a', data: '', encoding: 'utf8', stat, extra: 1 } }),
      /additional properties/,
    );
    assert.throws(() => checkResponse('GET', '/v1/nodes/a', { status: 418, headers: json, body: {} }), /status 418 is not documented/);
    assert.throws(
      () => checkResponse('GET', '/v1/nodes/a', { status: 200, headers: new Headers({ 'content-type': 'text/plain' }), body: 'x' }),
      /content type text\/plain is not documented/,
    );
    assert.throws(() => checkResponse('HEAD', '/v1/nodes/a', { status: 200, headers: new Headers(), body: undefined }), /X-Zk-Czxid is missing/);
    const problem = new Headers({ 'content-type': 'application/problem+json' });
    const body = { type: '/docs/errors#NO_NODE', title: 't', status: 404, detail: 'd', code: 'NO_NODE' };
    assert.throws(() => checkResponse('GET', '/v1/nodes/a', { status: 412, headers: problem, body: { ...body, status: 412 } }), /code/);
    assert.throws(() => checkResponse('GET', '/v1/nodes/a', { status: 404, headers: problem, body: { ...body, code: 'NO_SUCH_CODE' } }), /code/);
  });
});
