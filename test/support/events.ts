/** Reading async streams in tests with a deadline, so a missing event fails instead of hanging. */

/** The next `n` items of `it`, failing after `timeoutMs`. */
export async function take<T>(it: AsyncIterator<T>, n: number, timeoutMs = 10_000): Promise<T[]> {
  const out: T[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`only ${out.length} of ${n} items within ${timeoutMs} ms: ${JSON.stringify(out)}`)), Math.max(0, deadline - Date.now()));
    });
    try {
      const r = await Promise.race([it.next(), timeout]);
      if (r.done) throw new Error(`stream ended after ${out.length} of ${n} items: ${JSON.stringify(out)}`);
      out.push(r.value);
    } finally {
      clearTimeout(timer);
    }
  }
  return out;
}

/** Items of `it` until one satisfies `pred` (returned with all before it), failing after `timeoutMs`. */
export async function until<T>(it: AsyncIterator<T>, pred: (v: T) => boolean, timeoutMs = 15_000): Promise<T[]> {
  const seen: T[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no matching item within ${timeoutMs} ms; saw ${JSON.stringify(seen)}`);
    const [v] = await take(it, 1, left).catch((e: Error) => {
      throw new Error(`${e.message}; saw ${JSON.stringify(seen)}`);
    });
    seen.push(v as T);
    if (pred(v as T)) return seen;
  }
}
