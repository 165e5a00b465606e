/** ZooKeeper path rules (PathUtils.validatePath), joining and sequence suffixes. */

/** Why a path is invalid, or null when it is valid. */
export function pathProblem(path: string, opts: { sequential?: boolean } = {}): string | null {
  if (typeof path !== 'string' || path.length === 0) return 'path is empty';
  if (path[0] !== '/') return 'path must start with /';
  if (path.length === 1) return null;
  if (path.endsWith('/') && !opts.sequential) return 'path must not end with /';
  const segments = path.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i] as string;
    const last = i === segments.length - 1;
    if (s.length === 0 && !(last && opts.sequential)) return 'path has an empty segment';
    if (s === '.' || s === '..') return 'relative segments (. and ..) are not allowed';
    // UTF-16 code units, as the server's Java check sees them: characters outside the BMP are
    // surrogate pairs there and are refused (ZBADARGUMENTS) — refuse them here, before any call.
    for (let j = 0; j < s.length; j++) {
      const c = s.charCodeAt(j);
      if (c === 0) return 'null character not allowed';
      if ((c > 0 && c < 0x20) || (c >= 0x7f && c <= 0x9f)) return 'control characters are not allowed';
      if ((c >= 0xd800 && c <= 0xf8ff) || (c >= 0xfff0 && c <= 0xffff)) return 'invalid unicode character (private use, specials or outside the BMP, such as emoji)';
    }
  }
  return null;
}

/** Parent of a path; `/` for top-level nodes. */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** Last segment of a path. */
export function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Joins a parent path and a child name. */
export function joinPath(parent: string, child: string): string {
  return parent === '/' ? `/${child}` : `${parent}/${child}`;
}

/** Every proper ancestor of a path, outermost first (`/a/b/c` → `/a`, `/a/b`). */
export function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  let i = path.indexOf('/', 1);
  while (i > 0) {
    out.push(path.slice(0, i));
    i = path.indexOf('/', i + 1);
  }
  return out;
}

/** The 10-digit sequence suffix ZooKeeper appends to sequential nodes, or null. */
export function sequenceOf(name: string): number | null {
  const m = /(\d{10})$/.exec(name);
  return m ? Number(m[1]) : null;
}
