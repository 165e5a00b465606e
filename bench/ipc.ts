/**
 * Request/response over a forked child's IPC channel: the orchestrator (`run.ts`) drives each
 * benchmark process (gateway, raw ws server, load generators) with named calls, so every part
 * runs in its own process and the orchestrator only sequences rounds and reads results.
 */
import { fork, type ChildProcess } from 'node:child_process';

type Handler = (arg: never) => unknown;

interface Request {
  readonly id: number;
  readonly op: string;
  readonly arg: unknown;
}
interface Reply {
  readonly id: number;
  readonly result?: unknown;
  readonly error?: string;
}

/** A forked benchmark process; `call` runs one of its handlers and resolves with the result. */
export class BenchChild {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (m: Reply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(`${name}: ${m.error}`));
      else p.resolve(m.result);
    });
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        for (const p of this.pending.values()) p.reject(new Error(`${name} exited (${signal ?? code})`));
        this.pending.clear();
        resolve();
      }),
    );
  }

  /**
   * Forks `module` (a compiled bench file) with `--expose-gc` so memory can be measured after a
   * GC, and any `extraArgs` for node (`--cpu-prof`…).
   */
  static fork(name: string, module: URL, extraArgs: readonly string[] = []): BenchChild {
    const child = fork(module, [], { execArgv: ['--expose-gc', ...extraArgs], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new BenchChild(name, child);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  call<T>(op: string, arg: unknown = null): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, op, arg } satisfies Request);
    });
  }

  /** Asks the process to exit (its `close` handler runs), SIGKILLs it after `graceMs`. */
  async close(graceMs = 5000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.call('close').catch(() => undefined);
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

/**
 * The child side: answers calls with `handlers` (plus `mem`: RSS after a full GC, bytes; `cpu`: CPU time used, µs).
 * `close` runs the handler of that name, if any, then exits.
 */
export function serve(handlers: Record<string, Handler>): void {
  const all: Record<string, Handler> = {
    mem: () => {
      (globalThis as { gc?: () => void }).gc?.();
      return process.memoryUsage().rss;
    },
    /** CPU time this process has used so far (user + system), µs. */
    cpu: () => {
      const u = process.cpuUsage();
      return u.user + u.system;
    },
    ...handlers,
  };
  process.on('message', (m: Request) => {
    void (async () => {
      let reply: Reply;
      try {
        const h = all[m.op];
        if (!h) throw new Error(`no handler ${m.op}`);
        reply = { id: m.id, result: (await h(m.arg as never)) ?? null };
      } catch (err) {
        reply = { id: m.id, error: (err as Error).stack ?? String(err) };
      }
      process.send?.(reply);
      if (m.op === 'close') setImmediate(() => process.exit(0));
    })();
  });
  // Orphaned (the orchestrator died): leave.
  process.on('disconnect', () => process.exit(0));
}
