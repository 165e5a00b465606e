import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { ERROR_CODES, ZkgateError } from '../../src/core/index.js';
import { ERROR_TABLE } from '../../src/api/error-table.js';
import { toServiceError } from '../../src/api/grpc/call-context.js';
import { fromEnum, toEnum, unwrap } from '../../src/api/grpc/proto-values.js';

describe('grpc status mapping', () => {
  test('every error code becomes its table status, with the code and details in trailing metadata', () => {
    for (const code of ERROR_CODES) {
      const e = toServiceError(new ZkgateError(code, `msg ${code}`, { path: '/a', n: 1 }));
      assert.equal(e.code, ERROR_TABLE[code].grpc, code);
      assert.notEqual(e.code, status.OK, code);
      assert.equal(e.details, `msg ${code}`);
      assert.deepEqual(e.metadata?.get('zkgate-error-code'), [code]);
      assert.deepEqual(JSON.parse(String(e.metadata?.get('zkgate-error-details')[0])), { path: '/a', n: 1 });
    }
  });
  test('the documented choices: BAD_VERSION is ABORTED, a session down is UNAVAILABLE, unknown errors are INTERNAL without details', () => {
    assert.equal(toServiceError(new ZkgateError('BAD_VERSION', 'x')).code, status.ABORTED);
    assert.equal(toServiceError(new ZkgateError('UNAVAILABLE', 'x')).code, status.UNAVAILABLE);
    assert.equal(toServiceError(new ZkgateError('UNAUTHENTICATED', 'x')).code, status.UNAUTHENTICATED);
    const unknown = toServiceError(new TypeError('boom'));
    assert.equal(unknown.code, status.INTERNAL);
    assert.deepEqual(unknown.metadata?.get('zkgate-error-details'), []);
  });
});

describe('grpc proto values', () => {
  test('enum names map to core values and back; unspecified means the core default; others are INVALID_ARGUMENT', () => {
    const modes = ['persistent', 'ephemeral_sequential'] as const;
    assert.equal(fromEnum('CREATE_MODE_EPHEMERAL_SEQUENTIAL', 'CREATE_MODE', modes, 'mode'), 'ephemeral_sequential');
    assert.equal(fromEnum('CREATE_MODE_UNSPECIFIED', 'CREATE_MODE', modes, 'mode'), undefined);
    assert.equal(fromEnum(0, 'CREATE_MODE', modes, 'mode'), undefined);
    assert.throws(() => fromEnum(42, 'CREATE_MODE', modes, 'mode'), (e: unknown) => e instanceof ZkgateError && e.code === 'INVALID_ARGUMENT');
    assert.throws(() => fromEnum('LOCK_FLAVOUR_KAZOO', 'CREATE_MODE', modes, 'mode'), /mode/);
    assert.equal(toEnum('LEASE_STATE', 'uncertain'), 'LEASE_STATE_UNCERTAIN');
    assert.equal(unwrap({ value: 0 }), 0);
    assert.equal(unwrap(null), undefined);
  });
});
