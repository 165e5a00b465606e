/**
 * A malformed percent-escape in any path parameter of any REST route (`/v1/jobs/%ZZ`) is the
 * client's error: 400 with a problem body, never 500 (the fuzz test found `PUT /v1/jobs/%ZZ/`
 * answered 500 INTERNAL: express's router throws a URIError while matching the route).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openapiPaths } from '../../src/api/rest/app.js';
import { zkAndGateway } from '../support/test-gateway.js';

const env = zkAndGateway();

test('every route with a path parameter answers 400 to a malformed percent-escape in it, on every method', async () => {
  const routes = openapiPaths().filter((p) => p.includes('{'));
  assert.ok(routes.length > 20, `routes with parameters: ${routes.length}`);
  let checked = 0;
  for (const template of routes) {
    const url = template.replace(/\{[^}]+\}/g, 'a%ZZb');
    for (const method of ['GET', 'PUT', 'POST', 'DELETE']) {
      const res = await fetch(`${env.g.base}${url}`, { method, headers: { 'content-type': 'application/json' }, body: method === 'GET' ? undefined : '{}' });
      const body = (await res.json().catch(() => ({}))) as { code?: string };
      assert.ok(res.status < 500, `${method} ${url}: ${res.status} ${JSON.stringify(body)}`);
      if (res.status === 400) assert.ok(body.code === 'INVALID_ARGUMENT' || body.code === 'INVALID_PATH', `${method} ${url}: ${JSON.stringify(body)}`);
      checked++;
    }
  }
  assert.ok(checked > 80);
});
