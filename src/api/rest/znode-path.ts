/** Turns the URL remainder after a route prefix into a znode path, refusing encoded tricks. */
import { ZkgateError } from '../../core/index.js';

/**
 * `/a/b%20c` → `/a/b c`. An encoded slash (`%2F`) or malformed escape is INVALID_PATH rather
 * than silently becoming a different path.
 */
export function znodePathFromUrl(rest: string): string {
  if (rest === '' || rest === '/') return '/';
  // Nothing encoded: every segment decodes to itself (a path per request on the hot routes).
  if (!rest.includes('%')) return rest;
  const segments = rest.split('/');
  const out = segments.map((s) => {
    let d: string;
    try {
      d = decodeURIComponent(s);
    } catch {
      throw new ZkgateError('INVALID_PATH', `invalid path: malformed percent-encoding in ${JSON.stringify(s)}`, { path: rest });
    }
    if (d.includes('/')) throw new ZkgateError('INVALID_PATH', 'invalid path: encoded slash (%2F) in a segment', { path: rest });
    return d;
  });
  return out.join('/');
}
