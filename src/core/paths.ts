/**
 * Path validation as core reports it: ZooKeeper's syntax rules (src/zk/paths.ts) turned into
 * INVALID_PATH. Used by every part of core that takes a path (auth, nodes, recipes, the hub).
 */
import { pathProblem } from '../zk/index.js';
import { ZkgateError } from './errors.js';

/**
 * Validates a path; `sequential` allows the trailing `/` ZooKeeper accepts for sequential creates.
 * @returns the path unchanged
 * @throws ZkgateError INVALID_PATH naming the problem
 */
export function checkPath(path: string, sequential = false): string {
  const problem = pathProblem(path, { sequential });
  if (problem) throw new ZkgateError('INVALID_PATH', `invalid path ${JSON.stringify(path)}: ${problem}`, { path });
  return path;
}
