/** gRPC `zkgate.v1.Elections`: answers UNIMPLEMENTED until the election recipe lands in core. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Gateway } from '../../core/index.js';
import { notYet } from './not-yet.js';

/** The Elections service implementation over `gw`. */
export function electionsService(_gw: Gateway): UntypedServiceImplementation {
  return notYet('zkgate.v1.Elections', ['Campaign', 'Leader', 'Proclaim', 'Resign', 'Observe'], 'the election recipe');
}
