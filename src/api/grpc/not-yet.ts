/** Handlers for RPCs whose core capability is not in this build: each answers UNIMPLEMENTED. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { ZkgateError } from '../../core/index.js';
import { failStream, toServiceError } from './call-context.js';

interface AnyCall {
  emit(event: 'error', err: Error): boolean;
}

/** Every method of `service` fails with UNIMPLEMENTED naming the missing `capability`. */
export function notYet(service: string, methods: readonly string[], capability: string): UntypedServiceImplementation {
  const error = (m: string) => new ZkgateError('UNIMPLEMENTED', `${service}/${m}: ${capability} is not in this build of zkgate yet`, {});
  return Object.fromEntries(
    methods.map((m) => [
      m,
      (call: AnyCall, callback?: (err: Error) => void) => {
        if (callback) callback(toServiceError(error(m)));
        else failStream(call, error(m));
      },
    ]),
  );
}
