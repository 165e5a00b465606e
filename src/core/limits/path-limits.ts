/** Length and depth limits on znode paths, on top of ZooKeeper's own syntax rules. */
import type { Limits } from './limits.js';
import { ZkgateError } from '../errors.js';

/**
 * @throws ZkgateError INVALID_PATH (400) naming the limit when `path` is longer than
 * `maxPathBytes` UTF-8 bytes or has more than `maxPathDepth` segments.
 */
export function checkPathLimits(path: string, limits: Pick<Limits, 'maxPathBytes' | 'maxPathDepth'>): void {
  const bytes = Buffer.byteLength(path, 'utf8');
  if (bytes > limits.maxPathBytes) {
    throw new ZkgateError('INVALID_PATH', `invalid path: ${bytes} bytes long; the limit is ${limits.maxPathBytes}`, {
      limit: 'maxPathBytes',
      max: limits.maxPathBytes,
    });
  }
  let depth = 0;
  for (let i = 1; i < path.length; i++) if (path.charCodeAt(i) === 47) depth++;
  if (path.length > 1) depth++;
  if (depth > limits.maxPathDepth) {
    throw new ZkgateError('INVALID_PATH', `invalid path: ${depth} segments deep; the limit is ${limits.maxPathDepth}`, {
      limit: 'maxPathDepth',
      max: limits.maxPathDepth,
    });
  }
}
