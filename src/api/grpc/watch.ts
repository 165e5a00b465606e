/** gRPC `zkgate.v1.Watch`: answers UNIMPLEMENTED until the watch hub lands in core. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Gateway } from '../../core/index.js';
import { notYet } from './not-yet.js';

/** The Watch service implementation over `gw`. */
export function watchService(_gw: Gateway): UntypedServiceImplementation {
  return notYet('zkgate.v1.Watch', ['Watch'], 'the watch hub');
}
