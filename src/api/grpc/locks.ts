/** gRPC `zkgate.v1.Locks`: answers UNIMPLEMENTED until the lock recipe lands in core. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Gateway } from '../../core/index.js';
import { notYet } from './not-yet.js';

/** The Locks service implementation over `gw`. */
export function locksService(_gw: Gateway): UntypedServiceImplementation {
  return notYet('zkgate.v1.Locks', ['Acquire', 'Release', 'Inspect'], 'the lock recipe');
}
