/** gRPC `zkgate.v1.Znodes`: each RPC parses its request, makes one NodeService call, maps the result. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { CREATE_MODES, type CreateMode, type Gateway, type Scope, type Stat } from '../../core/index.js';
import { aclFromJson, aclToJson, type AclJson } from '../json.js';
import { scopeOf, unaryWith, type CallLike } from './call-context.js';
import { fromEnum, optionalString, unwrap, type Wrapped } from './proto-values.js';

interface PathRequest {
  path: string;
}
interface ChildrenRequest extends PathRequest {
  withStats: boolean;
  limit: number;
  cursor: string;
}
interface TreeRequest extends PathRequest {
  limit: number;
  depth: Wrapped<number>;
  withStats: boolean;
}
interface CreateRequest extends PathRequest {
  data: Buffer;
  mode: string;
  ttlMs: Wrapped<number>;
  createParents: boolean;
  leaseId: string;
}
interface SetRequest extends PathRequest {
  data: Buffer;
  version: Wrapped<number>;
}
interface DeleteRequest extends PathRequest {
  version: Wrapped<number>;
  recursive: boolean;
}
interface SetAclRequest extends PathRequest {
  acl: AclJson[];
  version: Wrapped<number>;
}

/**
 * The hot reads, as bodies of the caller's scope and the decoded request: grpc-js' handlers below
 * and the fast path (fast-path.ts) run the same ones. None needs the call (no wait, no deadline).
 */
export const ZNODES_FAST = {
  Get: (scope: Scope, req: PathRequest & { sync?: boolean; noCache?: boolean }) => scope.nodes.get(req.path, { sync: req.sync, cache: !req.noCache }),
  Exists: async (scope: Scope, req: PathRequest) => {
    const stat: Stat | null = await scope.nodes.exists(req.path);
    return { exists: stat !== null, stat };
  },
  Children: async (scope: Scope, req: ChildrenRequest) => {
    // proto3 cannot tell 0 or "" from absent: limit 0 is the maximum, an empty cursor the first page.
    const listing = await scope.nodes.children(req.path, { withStats: req.withStats, limit: req.limit || undefined, cursor: optionalString(req.cursor) });
    return { ...listing, nextCursor: listing.nextCursor ?? '' };
  },
} as const;

/** The Znodes service implementation over `gw`. */
export function znodesService(gw: Gateway): UntypedServiceImplementation {
  const unary = unaryWith(gw.logger);
  const nodes = (call: CallLike) => scopeOf(gw, call).nodes;
  return {
    Get: unary(async (req: PathRequest & { sync?: boolean; noCache?: boolean }, call) => ZNODES_FAST.Get(scopeOf(gw, call), req)),
    Exists: unary(async (req: PathRequest, call) => ZNODES_FAST.Exists(scopeOf(gw, call), req)),
    Children: unary(async (req: ChildrenRequest, call) => ZNODES_FAST.Children(scopeOf(gw, call), req)),
    Tree: unary(async (req: TreeRequest, call) => nodes(call).tree(req.path, { limit: req.limit || undefined, depth: unwrap(req.depth), withStats: req.withStats })),
    Create: unary(async (req: CreateRequest, call) => {
      const mode = fromEnum<CreateMode>(req.mode, 'CREATE_MODE', CREATE_MODES, 'mode');
      const leaseId = optionalString(req.leaseId);
      const path = await nodes(call).create(req.path, req.data, { mode, ttlMs: unwrap(req.ttlMs), createParents: req.createParents, leaseId });
      return { path };
    }),
    Set: unary(async (req: SetRequest, call) => ({
      path: req.path,
      stat: await nodes(call).set(req.path, req.data, { version: unwrap(req.version) }),
    })),
    Delete: unary(async (req: DeleteRequest, call) => {
      await nodes(call).delete(req.path, { version: unwrap(req.version), recursive: req.recursive });
      return {};
    }),
    GetAcl: unary(async (req: PathRequest, call) => {
      const { acl, stat } = await nodes(call).getAcl(req.path);
      return { path: req.path, acl: aclToJson(acl), stat };
    }),
    SetAcl: unary(async (req: SetAclRequest, call) => {
      const acl = aclFromJson(req.acl);
      const stat = await nodes(call).setAcl(req.path, acl, { version: unwrap(req.version) });
      return { path: req.path, acl: aclToJson(acl), stat };
    }),
    Sync: unary(async (req: PathRequest, call) => {
      await nodes(call).sync(req.path);
      return { path: req.path, synced: true };
    }),
  };
}
