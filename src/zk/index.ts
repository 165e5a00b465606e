/**
 * ZooKeeper access for zkgate: the typed client API, error mapping, path rules and long-lived
 * sessions. Nothing outside this folder imports the `zookeeper` package.
 */
export type { AclEntry, ChildrenResult, CreateMode, Created, NodeData, Stat, Watcher, WatchEvent, WatchEventType, ZkClient } from './client.js';
export { CREATE_MODES } from './client.js';
export { ZkError, toZkError, noNode, isConnectionError, type ZkErrorCode, type ZkOpKind } from './errors.js';
export { ancestorsOf, joinPath, nameOf, parentOf, pathProblem, sequenceOf } from './paths.js';
export { ZkSession, type ConnectionState, type RebuildFailure, type StateChange, type ZkSessionOptions } from './session.js';
export { monotonicMs, type SessionLiveness } from './liveness.js';
export { backoffDelay } from './backoff.js';
export { NativeZkClient, setNativeLogLevel, type NativeClientOptions, type NativeLogLevel } from './native-client.js';
export { startEmbeddedZooKeeper, EmbeddedUnavailableError, freePort, fourLetterWord, type EmbeddedZooKeeper, type EmbeddedOptions } from './embedded-server.js';
export { spawnClean } from './spawn-clean.js';
export { registerInstance, DuplicateInstanceError, InstanceRegistration, type HandoffTarget, type InstanceRegistrationOptions, type MemberRecord } from './instance-registration.js';
