/**
 * The client commands of the `zkgate` binary (`get`, `ls`, `create`, `set`, `rm`, `watch`,
 * `lease`, `lock`, `elect`): each talks to a running gateway over REST, like `etcdctl` or
 * `consul` talk to theirs. Readable text on a terminal, JSON with `--json`.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { EXIT, electionCalls, lockCalls, runHolding, type HoldSpec } from './hold.js';
import { GatewayClient, GatewayProblem, GatewayUnreachable, routeOf } from './http.js';

interface ConnFlags {
  url: string;
  key?: string;
  tenant?: string;
  json?: boolean;
}

interface Stat {
  readonly version: number;
  readonly numChildren: number;
  readonly dataLength: number;
  readonly mtimeMs: number;
  readonly ephemeralOwner: string;
  readonly [k: string]: unknown;
}
interface Znode {
  readonly path: string;
  readonly data: string;
  readonly encoding: string;
  readonly stat: Stat;
}
interface Listing {
  readonly path: string;
  readonly children: readonly { readonly name: string; readonly stat?: Stat }[];
  /** Present when more children follow in another page. */
  readonly nextCursor?: string;
}

function int(name: string, min = 0): (v: string) => number {
  return (v) => {
    if (!/^\d+$/.test(v) || Number(v) < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return Number(v);
  };
}

function path(v: string): string {
  if (!v.startsWith('/')) throw new InvalidArgumentError('must be an absolute znode path such as /app/config');
  return v;
}

/** The connection options every client command takes. */
function withConn(cmd: Command): Command {
  return cmd
    .addOption(new Option('--url <url>', 'the gateway').env('ZKGATE_URL').default('http://127.0.0.1:8080'))
    .addOption(new Option('--key <key>', 'API key').env('ZKGATE_API_KEY'))
    .addOption(new Option('--tenant <name>', 'tenant, when the key does not choose it').env('ZKGATE_TENANT'))
    .option('--json', 'print JSON instead of text');
}

function clientOf(f: ConnFlags): GatewayClient {
  return new GatewayClient({ url: f.url, key: f.key, tenant: f.tenant });
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function printJson(v: unknown): void {
  out(JSON.stringify(v));
}

/** Runs a command body; maps refusals and unreachable gateways to a message and an exit code. */
function act<A extends unknown[]>(body: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      const code = await body(...args);
      process.exitCode = code ?? 0;
    } catch (err) {
      const flags = args.find((a): a is ConnFlags & Record<string, unknown> => typeof a === 'object' && a !== null && 'url' in a);
      if (err instanceof GatewayProblem) {
        if (flags?.json) process.stderr.write(`${JSON.stringify({ status: err.status, code: err.code, detail: err.message, details: err.details })}\n`);
        else process.stderr.write(`zkgate: ${err.code}: ${err.message}\n`);
        process.exitCode = err.status >= 500 ? EXIT.unavailable : EXIT.refused;
        return;
      }
      if (err instanceof InvalidArgumentError) {
        process.stderr.write(`zkgate: ${err.message}\n`);
        process.exitCode = EXIT.usage;
        return;
      }
      if (err instanceof GatewayUnreachable) {
        process.stderr.write(`zkgate: ${err.message}\n`);
        process.exitCode = EXIT.unavailable;
        return;
      }
      throw err;
    }
  };
}

function statLine(name: string, s: Stat): string {
  const eph = s.ephemeralOwner !== '0' ? ` ephemeral=0x${BigInt(s.ephemeralOwner).toString(16)}` : '';
  return `${name}\tversion=${s.version} children=${s.numChildren} bytes=${s.dataLength} mtime=${new Date(s.mtimeMs).toISOString()}${eph}`;
}

/** Every child of `dir`: the gateway answers in pages (`nextCursor`), followed here to the last. */
async function allChildren(client: GatewayClient, dir: string, stat: boolean): Promise<Listing> {
  let l = await client.request<Listing>('GET', routeOf('children', dir), { query: { stat: stat || undefined } });
  const children = [...l.children];
  while (l.nextCursor) {
    l = await client.request<Listing>('GET', routeOf('children', dir), { query: { stat: stat || undefined, cursor: l.nextCursor } });
    children.push(...l.children);
  }
  return { ...l, children };
}

/** Children of `p`, depth-first, at most `max` nodes in all (then a refusal naming the bound). */
async function walk(client: GatewayClient, p: string, stat: boolean, max: number, visit: (path: string, s: Stat | undefined) => void): Promise<void> {
  let seen = 0;
  const go = async (dir: string): Promise<void> => {
    const l = await allChildren(client, dir, stat);
    for (const c of l.children) {
      if (++seen > max) throw new GatewayProblem(400, 'TOO_MANY_NODES', `more than ${max} nodes below ${p}; raise --max or list a smaller subtree`, { limit: max });
      const child = dir === '/' ? `/${c.name}` : `${dir}/${c.name}`;
      visit(child, c.stat);
      await go(child);
    }
  };
  await go(p);
}

function znodeCommands(program: Command): void {
  withConn(program.command('get').description('print a znode\'s data (and its stat with --stat)').argument('<path>', 'znode path', path))
    .option('--stat', 'print the stat too')
    .option('--base64', 'ask for the data base64-encoded (binary data)')
    .action(
      act(async (p: string, f: ConnFlags & { stat?: boolean; base64?: boolean }) => {
        const z = await clientOf(f).request<Znode>('GET', routeOf('nodes', p), { query: { encoding: f.base64 ? 'base64' : undefined } });
        if (f.json) return printJson(z);
        out(z.data);
        if (f.stat) for (const [k, v] of Object.entries(z.stat)) out(`${k} = ${String(v)}`);
      }),
    );

  withConn(program.command('ls').description('list a znode\'s children').argument('[path]', 'znode path', path, '/'))
    .option('-R, --recursive', 'the whole subtree, one full path a line')
    .option('--stat', 'each child with its version, children, size and mtime')
    .option('--max <n>', 'most nodes a recursive listing visits', int('--max', 1), 10_000)
    .action(
      act(async (p: string, f: ConnFlags & { recursive?: boolean; stat?: boolean; max: number }) => {
        const client = clientOf(f);
        if (f.recursive) {
          const nodes: { path: string; stat?: Stat }[] = [];
          await walk(client, p, Boolean(f.stat), f.max, (path, stat) => {
            if (f.json) nodes.push(stat ? { path, stat } : { path });
            else out(stat ? statLine(path, stat) : path);
          });
          if (f.json) printJson({ path: p, nodes });
          return;
        }
        const l = await allChildren(client, p, Boolean(f.stat));
        if (f.json) return printJson(l);
        for (const c of l.children) out(c.stat ? statLine(c.name, c.stat) : c.name);
      }),
    );

  const modes = ['persistent', 'persistent_sequential', 'ephemeral', 'ephemeral_sequential', 'container', 'ttl', 'ttl_sequential'];
  withConn(program.command('create').description('create a znode; prints the created path').argument('<path>', 'znode path', path).argument('[data]', 'initial data (UTF-8)'))
    .addOption(new Option('--mode <mode>', 'create mode').choices(modes).default('persistent'))
    .option('-p, --parents', 'create missing parents')
    .option('--ttl-ms <ms>', 'TTL of a ttl or ttl_sequential node', int('--ttl-ms', 1))
    .option('--lease <id>', 'the lease owning an ephemeral node')
    .action(
      act(async (p: string, data: string | undefined, f: ConnFlags & { mode: string; parents?: boolean; ttlMs?: number; lease?: string }) => {
        const body = { data: data ?? '', mode: f.mode, createParents: f.parents ?? false, ttlMs: f.ttlMs, leaseId: f.lease };
        const created = await clientOf(f).request<{ path: string }>('POST', routeOf('nodes', p), { body });
        if (f.json) printJson(created);
        else out(created.path);
      }),
    );

  withConn(program.command('set').description("set a znode's data; with --version only if it is still at that version").argument('<path>', 'znode path', path).argument('<data>', 'new data (UTF-8)'))
    .option('--version <n>', 'expected version (compare-and-set)', int('--version'))
    .action(
      act(async (p: string, data: string, f: ConnFlags & { version?: number }) => {
        const z = await clientOf(f).request<{ stat: Stat }>('PUT', routeOf('nodes', p), { body: { data, version: f.version } });
        if (f.json) printJson(z);
        else out(`version ${z.stat.version}`);
      }),
    );

  withConn(program.command('rm').description('delete a znode').argument('<path>', 'znode path', path))
    .option('-r, --recursive', 'the whole subtree (refused past the server\'s limit)')
    .option('--version <n>', 'expected version', int('--version'))
    .action(
      act(async (p: string, f: ConnFlags & { recursive?: boolean; version?: number }) => {
        await clientOf(f).request('DELETE', routeOf('nodes', p), { query: { recursive: f.recursive || undefined, version: f.version } });
        if (f.json) printJson({ deleted: p });
      }),
    );

  withConn(program.command('watch').description('follow a node, its children or its subtree: one line of JSON per event').argument('<path>', 'znode path', path))
    .addOption(new Option('--kind <kind>', 'what to follow').choices(['data', 'children', 'subtree']).default('data'))
    .action(
      act(async (p: string, f: ConnFlags & { kind: string }) => {
        const stop = new AbortController();
        const end = (): void => stop.abort();
        process.once('SIGINT', end).once('SIGTERM', end);
        for await (const ev of clientOf(f).events(routeOf('watch', p), { kind: f.kind }, stop.signal)) {
          printJson(ev.data);
          if (ev.event === 'error') return EXIT.unavailable;
        }
      }),
    );
}

interface Contender {
  readonly node: string;
  readonly data: string;
  readonly fencingToken: string;
  readonly ctimeMs: number;
}

function inspectCommand(program: Command): void {
  withConn(program.command('inspect').description('who holds a lock (or leads an election), since when, and who waits').argument('<path>', 'lock or election path', path))
    .option('--election', 'PATH is an election')
    .option('--flavour <flavour>', 'lock layout: curator (default) or kazoo')
    .action(
      act(async (p: string, f: ConnFlags & { election?: boolean; flavour?: string }) => {
        const client = clientOf(f);
        if (f.election) {
          const s = await client.request<{ leader: { node: string; value: string; term: string } | null }>('GET', routeOf('elections', p));
          if (f.json) return printJson(s);
          out(s.leader ? `leader ${s.leader.node} value=${s.leader.value} term=${s.leader.term}` : 'no leader');
          return;
        }
        const lock = await client.request<{ holder: Contender | null; queue: Contender[] }>('GET', routeOf('locks', p), { query: { flavour: f.flavour } });
        if (f.json) return printJson(lock);
        const line = (c: Contender): string => `${c.node} data=${c.data} fencingToken=${c.fencingToken} since=${new Date(c.ctimeMs).toISOString()}`;
        out(lock.holder ? `held by ${line(lock.holder)}` : 'free');
        for (const w of lock.queue.slice(1)) out(`waiting ${line(w)}`);
      }),
    );
}

function leaseCommands(program: Command): void {
  const lease = program.command('lease').description('grant, keep alive, inspect and revoke leases');
  const show = (f: ConnFlags, l: { id: string; state: string; remainingMs: number }): void => (f.json ? printJson(l) : out(`${l.id}\t${l.state}\tremainingMs=${l.remainingMs}`));
  withConn(lease.command('grant').description('grant a lease; prints its id'))
    .requiredOption('--ttl-ms <ms>', 'time to live without a keepalive', int('--ttl-ms', 1))
    .action(
      act(async (f: ConnFlags & { ttlMs: number }) => {
        const l = await clientOf(f).request<{ id: string }>('POST', '/v1/leases', { body: { ttlMs: f.ttlMs } });
        if (f.json) printJson(l);
        else out(l.id);
      }),
    );
  withConn(lease.command('keepalive').description('keep a lease alive once, or every --every ms until interrupted').argument('<id>', 'lease id'))
    .option('--every <ms>', 'repeat at this interval', int('--every', 100))
    .action(
      act(async (id: string, f: ConnFlags & { every?: number }) => {
        const client = clientOf(f);
        for (;;) {
          show(f, await client.request('POST', `/v1/leases/${encodeURIComponent(id)}/keepalive`));
          if (!f.every) return;
          await new Promise((r) => setTimeout(r, f.every));
        }
      }),
    );
  withConn(lease.command('get').description('a lease\'s state, time left and what it owns').argument('<id>', 'lease id')).action(
    act(async (id: string, f: ConnFlags) => {
      const l = await clientOf(f).request<{ id: string; state: string; remainingMs: number; owned: { path: string; kind: string }[] }>('GET', `/v1/leases/${encodeURIComponent(id)}`);
      if (f.json) return printJson(l);
      show(f, l);
      for (const o of l.owned) out(`  ${o.kind}\t${o.path}`);
    }),
  );
  withConn(lease.command('revoke').description('revoke a lease and delete what it owns').argument('<id>', 'lease id')).action(
    act(async (id: string, f: ConnFlags) => {
      show(f, await clientOf(f).request('DELETE', `/v1/leases/${encodeURIComponent(id)}`));
    }),
  );
}

interface HoldFlags extends ConnFlags {
  ttlMs: number;
  waitMs?: number;
  graceMs: number;
}

function holdOptions(cmd: Command): Command {
  return withConn(cmd)
    .option('--ttl-ms <ms>', 'lease TTL; kept alive every third of it while waiting and running', int('--ttl-ms', 1000), 10_000)
    .option('--wait-ms <ms>', 'give up after this long (0 = try once); default: wait until obtained', int('--wait-ms'))
    .option('--grace-ms <ms>', 'after a loss, time between SIGTERM and SIGKILL of the command', int('--grace-ms'), 5000);
}

function holdSpec(kind: HoldSpec['kind'], p: string, command: string[], f: HoldFlags, calls: Pick<HoldSpec, 'acquire' | 'release'>): HoldSpec {
  if (command.length === 0) throw new InvalidArgumentError('give the command after --, e.g. zkgate lock /jobs/nightly -- ./nightly.sh');
  return {
    kind,
    path: p,
    ttlMs: f.ttlMs,
    waitMs: f.waitMs,
    graceMs: f.graceMs,
    command,
    ...calls,
    report(event, fields) {
      if (f.json) process.stderr.write(`${JSON.stringify({ event, kind, ...fields })}\n`);
      else if (event === 'lost' || event === 'not_acquired' || event === 'command_failed') {
        process.stderr.write(`zkgate: ${kind} ${p}: ${event.replace('_', ' ')}${fields.reason ? ` (${String(fields.reason)})` : ''}\n`);
      }
    },
  };
}

function holdCommands(program: Command): void {
  holdOptions(
    program
      .command('lock')
      .description('run a command while holding a lock (like consul lock); the fencing token is in $ZKGATE_FENCING_TOKEN')
      .argument('<path>', 'lock path', path)
      .argument('[command...]', 'the command and its arguments, after --'),
  )
    .option('--flavour <flavour>', 'curator (default) or kazoo node layout')
    .option('--data <text>', 'data of the lock node (who holds it)')
    .action(
      act(async (p: string, command: string[], f: HoldFlags & { flavour?: string; data?: string }) => {
        const client = clientOf(f);
        return runHolding(client, holdSpec('lock', p, command, f, lockCalls(client, p, { flavour: f.flavour, data: f.data })));
      }),
    );
  holdOptions(
    program
      .command('elect')
      .description('run a command while leader of an election; the term is in $ZKGATE_TERM and $ZKGATE_FENCING_TOKEN')
      .argument('<path>', 'election path', path)
      .argument('[command...]', 'the command and its arguments, after --'),
  )
    .option('--value <text>', 'the value to lead with (default: the lease id)')
    .action(
      act(async (p: string, command: string[], f: HoldFlags & { value?: string }) => {
        const client = clientOf(f);
        return runHolding(client, holdSpec('leadership', p, command, f, electionCalls(client, p, f.value)));
      }),
    );
}

/** Adds the client commands to the `zkgate` program. */
export function registerClientCommands(program: Command): void {
  znodeCommands(program);
  inspectCommand(program);
  leaseCommands(program);
  holdCommands(program);
}
