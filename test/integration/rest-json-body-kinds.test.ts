/**
 * A JSON body that is not an object (`null`, an array, a number, a string, a boolean) is the
 * client's error on every REST route and method: 4xx with a problem body, never 500 (the fuzz
 * test found `DELETE /v1/rwlocks/…` with the body `null` answered 500 INTERNAL: `typeof null`
 * is 'object', so the body was taken for an object and read).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openapiPaths } from '../../src/api/rest/app.js';
import { zkAndGateway } from '../support/test-gateway.js';

const env = zkAndGateway();

test('every route answers a non-object JSON body with a client error, on every method that takes a body', async () => {
  const routes = openapiPaths();
  assert.ok(routes.length > 30, `routes: ${routes.length}`);
  let checked = 0;
  let invalid = 0;
  for (const template of routes) {
    const url = template.replace(/\{[^}]+\}/g, 'a');
    for (const method of ['PUT', 'POST', 'DELETE', 'PATCH']) {
      for (const body of ['null', '[]', '5', '"s"', 'true']) {
        const res = await fetch(`${env.g.base}${url}`, { method, headers: { 'content-type': 'application/json' }, body });
        const answer = (await res.json().catch(() => ({}))) as { code?: string };
        assert.ok(res.status < 500, `${method} ${url} ${body}: ${res.status} ${JSON.stringify(answer)}`);
        if (res.status === 400 && answer.code === 'INVALID_ARGUMENT') invalid++;
        checked++;
        // A route without this method answers 405 (or 404) whatever the body: one body says so.
        if (res.status === 405 || answer.code === 'METHOD_NOT_ALLOWED') break;
      }
    }
  }
  assert.ok(checked > 300, `${checked} requests`);
  // Routes that read a body refuse a non-object one as such (a regression that passed it over would drop this).
  assert.ok(invalid > 100, `${invalid} of ${checked} answered 400 INVALID_ARGUMENT`);
});
