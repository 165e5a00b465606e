/**
 * Request messages that do not decode. grpc-js answers a deserializer's throw with INTERNAL, as
 * if the server were broken; a malformed message is the client's fault, so the deserializers are
 * wrapped to hand over a marker instead, and handlers answer INVALID_ARGUMENT.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { ZkgateError } from '../../core/index.js';

const MALFORMED = Symbol('zkgate.malformed');

/** The service with every request deserializer made total: undecodable bytes become a marker. */
export function lenientDecoding(service: ServiceDefinition): ServiceDefinition {
  const out: Record<string, ServiceDefinition[string]> = {};
  for (const [name, def] of Object.entries(service)) {
    out[name] = {
      ...def,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          return def.requestDeserialize(bytes);
        } catch {
          return { [MALFORMED]: true };
        }
      },
    };
  }
  return out as ServiceDefinition;
}

/** The request, unless it did not decode. @throws ZkgateError INVALID_ARGUMENT for a malformed message */
export function checkDecoded<T>(request: T): T {
  if (typeof request === 'object' && request !== null && MALFORMED in request) {
    throw new ZkgateError('INVALID_ARGUMENT', 'grpc: the request message is not valid protobuf for this method', { field: 'message' });
  }
  return request;
}
