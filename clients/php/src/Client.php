<?php
declare(strict_types=1);

namespace Zkgate;

/**
 * zkgate's REST API from plain PHP (ext-curl only): znodes, leases, locks, elections and the
 * watch long-poll. Every refusal throws ZkgateException with zkgate's stable error code. Data is
 * bytes (PHP strings) both ways: it travels base64-encoded, so binary data is safe.
 *
 *   $zk = Client::fromEnv();            // ZKGATE_URL (default http://127.0.0.1:8080), ZKGATE_API_KEY
 *   $zk->create('/config/app', 'color=red', ['createParents' => true]);
 *   $zk->withLock('/cron/nightly', fn (array $hold) => run_job($hold['fencingToken']));
 */
class Client
{
    private string $baseUrl;

    /**
     * @param string      $baseUrl   the gateway, e.g. http://127.0.0.1:8080
     * @param string|null $apiKey    sent as `Authorization: Bearer` (needed once the gateway has keys)
     * @param string|null $tenant    `Zkgate-Tenant` (only without keys, when several tenants exist)
     * @param int         $timeoutMs the longest any one HTTP call may take (waits included)
     */
    public function __construct(string $baseUrl = 'http://127.0.0.1:8080', private readonly ?string $apiKey = null, private readonly ?string $tenant = null, private readonly int $timeoutMs = 120000)
    {
        $this->baseUrl = rtrim($baseUrl, '/');
    }

    /** A client for ZKGATE_URL (default http://127.0.0.1:8080) with ZKGATE_API_KEY and ZKGATE_TENANT if set. */
    public static function fromEnv(): self
    {
        return new self(getenv('ZKGATE_URL') ?: 'http://127.0.0.1:8080', getenv('ZKGATE_API_KEY') ?: null, getenv('ZKGATE_TENANT') ?: null);
    }

    /** `/v1/nodes` + the znode path with each name percent-encoded. */
    public static function url(string $prefix, string $path): string
    {
        return $prefix . ($path === '/' ? '' : implode('/', array_map('rawurlencode', explode('/', $path))));
    }

    /**
     * One HTTP call. Returns [status, decoded JSON body or null, lower-cased response headers].
     * @throws ZkgateException UNAVAILABLE (status 0) when the gateway cannot be reached
     */
    public function request(string $method, string $path, ?array $body = null, array $query = []): array
    {
        $url = $this->baseUrl . $path . ($query ? '?' . http_build_query($query) : '');
        $headers = ['Accept: application/json'];
        if ($this->apiKey !== null) {
            $headers[] = 'Authorization: Bearer ' . $this->apiKey;
        }
        if ($this->tenant !== null) {
            $headers[] = 'Zkgate-Tenant: ' . $this->tenant;
        }
        $ch = curl_init($url);
        $responseHeaders = [];
        curl_setopt_array($ch, [
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_TIMEOUT_MS => $this->timeoutMs,
            CURLOPT_HEADERFUNCTION => function ($ch, string $line) use (&$responseHeaders): int {
                $parts = explode(':', $line, 2);
                if (count($parts) === 2) {
                    $responseHeaders[strtolower(trim($parts[0]))] = trim($parts[1]);
                }
                return strlen($line);
            },
        ]);
        if ($body !== null) {
            $headers[] = 'Content-Type: application/json';
            curl_setopt($ch, CURLOPT_POSTFIELDS, json_encode($body, JSON_THROW_ON_ERROR));
        }
        curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
        $text = curl_exec($ch);
        $status = (int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
        $error = curl_error($ch);
        curl_close($ch);
        if ($text === false) {
            throw new ZkgateException('UNAVAILABLE', "cannot reach $url: $error", 0);
        }
        return [$status, $text === '' ? null : json_decode($text, true), $responseHeaders];
    }

    /** One call that must succeed; returns the decoded body. @throws ZkgateException */
    public function call(string $method, string $path, ?array $body = null, array $query = []): ?array
    {
        [$status, $answer] = $this->request($method, $path, $body, $query);
        if ($status >= 400) {
            throw self::problem($status, $answer);
        }
        return $answer;
    }

    private static function problem(int $status, mixed $answer): ZkgateException
    {
        $answer = is_array($answer) ? $answer : [];
        return new ZkgateException($answer['code'] ?? 'HTTP_' . $status, $answer['detail'] ?? "HTTP $status", $status, $answer['details'] ?? []);
    }

    private static function bytes(array $node): array
    {
        if (array_key_exists('data', $node)) {
            $node['data'] = ($node['encoding'] ?? 'utf8') === 'base64' ? base64_decode($node['data'], true) : $node['data'];
            unset($node['encoding']);
        }
        return $node;
    }

    private static function leaseId(Lease|string $lease): string
    {
        return $lease instanceof Lease ? $lease->id : $lease;
    }

    // ---------------------------------------------------------------------------------------
    // znodes

    /** Data (bytes) and stat: ['path' => …, 'data' => …, 'stat' => […]]. @throws ZkgateException NO_NODE */
    public function get(string $path): array
    {
        return self::bytes($this->call('GET', self::url('/v1/nodes', $path), null, ['encoding' => 'base64']));
    }

    /** The stat, or null when the node does not exist. */
    public function exists(string $path): ?array
    {
        try {
            return $this->get($path)['stat'];
        } catch (ZkgateException $e) {
            if ($e->errorCode === 'NO_NODE') {
                return null;
            }
            throw $e;
        }
    }

    /** Child names in order (with $withStats: ['name' => …, 'stat' => […]] entries). */
    public function children(string $path, bool $withStats = false): array
    {
        $listing = $this->call('GET', self::url('/v1/children', $path), null, $withStats ? ['stat' => 'true'] : []);
        return $withStats ? $listing['children'] : array_map(fn (array $c) => $c['name'], $listing['children']);
    }

    /**
     * Creates a node; returns its path (sequential modes append a 10-digit suffix).
     * @param array{mode?: string, ttlMs?: int, createParents?: bool, leaseId?: string, lease?: Lease} $options
     *   mode: persistent (default), persistent_sequential, ephemeral, ephemeral_sequential (these two
     *   need a lease), container, ttl, ttl_sequential (with ttlMs)
     * @throws ZkgateException NODE_EXISTS, NO_NODE (missing parent: pass createParents), LEASE_REQUIRED …
     */
    public function create(string $path, string $data = '', array $options = []): string
    {
        if (isset($options['lease'])) {
            $options['leaseId'] = self::leaseId($options['lease']);
            unset($options['lease']);
        }
        $body = ['data' => base64_encode($data), 'encoding' => 'base64'] + $options;
        return $this->call('POST', self::url('/v1/nodes', $path), $body)['path'];
    }

    /** Replaces the data; with $version only if the node is still at that version. Returns the new stat. @throws ZkgateException BAD_VERSION, NO_NODE */
    public function set(string $path, string $data, ?int $version = null): array
    {
        $body = ['data' => base64_encode($data), 'encoding' => 'base64'] + ($version === null ? [] : ['version' => $version]);
        return $this->call('PUT', self::url('/v1/nodes', $path), $body)['stat'];
    }

    /** Deletes a node (with $recursive its subtree, within the gateway's limit). @throws ZkgateException NO_NODE, NOT_EMPTY, BAD_VERSION */
    public function delete(string $path, ?int $version = null, bool $recursive = false): void
    {
        $query = ($version === null ? [] : ['version' => $version]) + ($recursive ? ['recursive' => 'true'] : []);
        $this->call('DELETE', self::url('/v1/nodes', $path), null, $query);
    }

    // ---------------------------------------------------------------------------------------
    // leases

    /** Grants a lease of $ttlMs; keep it alive with $lease->keepAliveIfDue() from your loop. */
    public function grantLease(int $ttlMs): Lease
    {
        $info = $this->call('POST', '/v1/leases', ['ttlMs' => $ttlMs]);
        return new Lease($this, $info['id'], $ttlMs, $info);
    }

    /** Runs $fn($lease) with a new lease and revokes it afterwards, whatever happens. */
    public function withLease(int $ttlMs, callable $fn): mixed
    {
        $lease = $this->grantLease($ttlMs);
        try {
            return $fn($lease);
        } finally {
            $lease->revoke();
        }
    }

    // ---------------------------------------------------------------------------------------
    // locks

    /**
     * Takes the fair lock at $path for $lease, waiting up to $waitMs (0 = try once). Returns the
     * hold: ['node' => …, 'fencingToken' => …, …]; pass the fencing token to what you protect.
     * @throws ZkgateException LOCK_NOT_ACQUIRED (details.holder) when the wait ends
     */
    public function lock(string $path, Lease|string $lease, int $waitMs = 0, ?string $data = null, string $flavour = 'curator'): array
    {
        $body = ['leaseId' => self::leaseId($lease), 'waitMs' => $waitMs, 'flavour' => $flavour];
        if ($data !== null) {
            $body += ['data' => base64_encode($data), 'encoding' => 'base64'];
        }
        return $this->call('POST', self::url('/v1/locks', $path), $body);
    }

    /** Releases a hold (or gives up a wait); false when the node was not (or no longer) this lease's. */
    public function unlock(string $path, Lease|string $lease, string $node): bool
    {
        return (bool) $this->call('DELETE', self::url('/v1/locks', $path), null, ['leaseId' => self::leaseId($lease), 'node' => $node])['released'];
    }

    /** The holder (or null) and the queue, in order. */
    public function inspectLock(string $path): array
    {
        return $this->call('GET', self::url('/v1/locks', $path));
    }

    /**
     * Runs $fn($hold) while holding the lock, with a lease of its own kept for $ttlMs; releases
     * and revokes afterwards. Keep $fn shorter than $ttlMs or call keepAliveIfDue() on $hold['lease'].
     * $data is stored in the lock node (who holds it, for inspectLock and LOCK_NOT_ACQUIRED).
     * @throws ZkgateException LOCK_NOT_ACQUIRED when another holder keeps it past $waitMs
     */
    public function withLock(string $path, callable $fn, int $waitMs = 0, int $ttlMs = 10000, ?string $data = null): mixed
    {
        return $this->withLease($ttlMs, function (Lease $lease) use ($path, $fn, $waitMs, $data) {
            $hold = $this->lock($path, $lease, $waitMs, $data);
            try {
                return $fn($hold + ['lease' => $lease]);
            } finally {
                $this->unlock($path, $lease, $hold['node']);
            }
        });
    }

    // ---------------------------------------------------------------------------------------
    // queues (Curator SimpleDistributedQueue layout)

    /** Appends an item (bytes); returns ['item' => 'qn-…', 'node' => …]. */
    public function put(string $queue, string $data): array
    {
        return $this->call('POST', self::url('/v1/queues', $queue), ['data' => base64_encode($data), 'encoding' => 'base64']);
    }

    /**
     * Removes the head and returns it (at most once): ['item' => …, 'data' => bytes, …], or null
     * when no item came within $waitMs (a long-poll).
     */
    public function take(string $queue, int $waitMs = 0): ?array
    {
        return $this->deliver($queue, ['waitMs' => $waitMs]);
    }

    /**
     * Claims the head for $lease (at least once): the item stays until ack(); if the lease ends
     * first it is delivered again. Returns ['item' => …, 'data' => bytes, 'fencingToken' => …, …],
     * or null when no item came within $waitMs.
     */
    public function claim(string $queue, Lease|string $lease, int $waitMs = 0): ?array
    {
        return $this->deliver($queue, ['mode' => 'claim', 'leaseId' => self::leaseId($lease), 'waitMs' => $waitMs]);
    }

    private function deliver(string $queue, array $body): ?array
    {
        [$status, $answer] = $this->request('POST', self::url('/v1/queue-take', $queue), $body + ['encoding' => 'base64']);
        if ($status === 409 && ($answer['code'] ?? '') === 'QUEUE_EMPTY') {
            return null;
        }
        if ($status >= 400) {
            throw self::problem($status, $answer);
        }
        return self::bytes($answer);
    }

    /** Deletes a claimed item; false when $lease held no claim on it (already acked, or another's). */
    public function ack(string $queue, Lease|string $lease, string $item): bool
    {
        return (bool) $this->call('POST', self::url('/v1/queue-ack', $queue), ['leaseId' => self::leaseId($lease), 'item' => $item])['acked'];
    }

    /** Gives a claimed item back (claimable again at once); false when $lease held no claim on it. */
    public function release(string $queue, Lease|string $lease, string $item): bool
    {
        return (bool) $this->call('POST', self::url('/v1/queue-release', $queue), ['leaseId' => self::leaseId($lease), 'item' => $item])['released'];
    }

    /** ['length' => …, 'claimed' => …, 'head' => the first unclaimed item or null]. */
    public function inspectQueue(string $queue): array
    {
        return $this->call('GET', self::url('/v1/queues', $queue));
    }

    // ---------------------------------------------------------------------------------------
    // jobs (docs/jobs.md): run-once triggers, sharded jobs

    /** Creates the job or updates ['shardCount' => …, 'retentionMs' => …]; idempotent. */
    public function putJob(string $job, array $settings = []): array
    {
        return $this->call('PUT', '/v1/jobs/' . rawurlencode($job), $settings ?: null); // no body: {} (an empty PHP array would be [])
    }

    /**
     * Claims the run of $trigger (or of shard item $shard of it) for $lease: the run record when
     * this caller must run it now, or null when another caller runs it or it already ran
     * (RUN_CLAIMED; the claimer is in the exception details if you call `call` yourself).
     * @throws ZkgateException JOB_NOT_ACTIVE (paused, disabled), SHARD_NOT_HELD, the lease's end …
     */
    public function claimRun(string $job, string $trigger, Lease|string $lease, ?string $claimer = null, ?int $shard = null): ?array
    {
        $body = ['trigger' => $trigger, 'leaseId' => self::leaseId($lease)] + ($claimer === null ? [] : ['claimer' => $claimer]) + ($shard === null ? [] : ['shard' => $shard]);
        [$status, $answer] = $this->request('POST', '/v1/jobs/' . rawurlencode($job) . '/runs', $body);
        if ($status === 409 && ($answer['code'] ?? '') === 'RUN_CLAIMED') {
            return null;
        }
        if ($status >= 400) {
            throw self::problem($status, $answer);
        }
        return $answer;
    }

    /** Reports the end of the lease's run ($runId from claimRun's record). @throws ZkgateException RUN_NOT_HELD when it was orphaned and reclaimed */
    public function completeRun(string $job, string $runId, Lease|string $lease, bool $succeeded = true, string $message = ''): array
    {
        return $this->call('POST', '/v1/jobs/' . rawurlencode($job) . '/runs/' . rawurlencode($runId) . '/complete', [
            'leaseId' => self::leaseId($lease),
            'outcome' => $succeeded ? 'succeeded' : 'failed',
            'message' => $message,
        ]);
    }

    /** Joins a sharded job as $memberId; returns the member's view (items, pending, generation, state). */
    public function joinJob(string $job, string $memberId, Lease|string $lease): array
    {
        return $this->call('POST', '/v1/jobs/' . rawurlencode($job) . '/members', ['memberId' => $memberId, 'leaseId' => self::leaseId($lease)]);
    }

    /**
     * Between batches: gives up the items no longer assigned (you have stopped them), claims the
     * free assigned ones; process exactly the returned 'items' until the next sync.
     */
    public function syncJob(string $job, string $memberId, Lease|string $lease): array
    {
        return $this->call('POST', '/v1/jobs/' . rawurlencode($job) . '/members/' . rawurlencode($memberId) . '/sync', ['leaseId' => self::leaseId($lease)]);
    }

    /** Leaves the job (its items are reassigned at once). */
    public function leaveJob(string $job, string $memberId, Lease|string $lease): array
    {
        return $this->call('DELETE', '/v1/jobs/' . rawurlencode($job) . '/members/' . rawurlencode($memberId), null, ['leaseId' => self::leaseId($lease)]);
    }

    /** The assignment; with $after (a generation), waits up to $waitMs for a newer one. */
    public function jobAssignment(string $job, ?int $after = null, int $waitMs = 0): array
    {
        return $this->call('GET', '/v1/jobs/' . rawurlencode($job) . '/assignment', null, $after === null ? [] : ['after' => $after, 'wait' => $waitMs]);
    }

    // ---------------------------------------------------------------------------------------
    // barriers (Curator DistributedBarrier / DistributedDoubleBarrier layouts)

    /** Sets the simple barrier at $path (idempotent). */
    public function setBarrier(string $path): array
    {
        return $this->call('PUT', self::url('/v1/barriers', $path));
    }

    /** Removes the simple barrier at $path, releasing its waiters (idempotent). */
    public function removeBarrier(string $path): array
    {
        return $this->call('DELETE', self::url('/v1/barriers', $path));
    }

    /** Waits up to $waitMs until the simple barrier is removed; false when it is still set. */
    public function waitOnBarrier(string $path, int $waitMs): bool
    {
        [$status, $answer] = $this->request('GET', self::url('/v1/barriers', $path), null, ['wait' => $waitMs]);
        if ($status === 409 && ($answer['code'] ?? '') === 'BARRIER_TIMEOUT') {
            return false;
        }
        if ($status >= 400) {
            throw self::problem($status, $answer);
        }
        return true;
    }

    /**
     * Enters the double barrier at $path with $lease and waits up to $waitMs until $members have
     * entered. Returns ['node' => …, 'members' => …]. @throws ZkgateException BARRIER_TIMEOUT
     */
    public function enterBarrier(string $path, Lease|string $lease, int $members, int $waitMs): array
    {
        return $this->call('POST', self::url('/v1/double-barriers', $path), ['leaseId' => self::leaseId($lease), 'members' => $members, 'waitMs' => $waitMs]);
    }

    /** Leaves the double barrier and waits up to $waitMs until every member has left. @throws ZkgateException BARRIER_TIMEOUT */
    public function leaveBarrier(string $path, Lease|string $lease, string $node, int $waitMs): array
    {
        return $this->call('DELETE', self::url('/v1/double-barriers', $path), null, ['leaseId' => self::leaseId($lease), 'node' => $node, 'waitMs' => $waitMs]);
    }

    // ---------------------------------------------------------------------------------------
    // elections

    /**
     * Campaigns for leadership at $path with $value, waiting up to $waitMs. Returns
     * ['leader' => true, 'node' => …, 'term' => …]. @throws ZkgateException NOT_ELECTED when the wait ends
     */
    public function campaign(string $path, Lease|string $lease, string $value = '', int $waitMs = 0): array
    {
        return $this->call('POST', self::url('/v1/elections', $path), ['leaseId' => self::leaseId($lease), 'value' => base64_encode($value), 'encoding' => 'base64', 'waitMs' => $waitMs]);
    }

    /** ['leader' => ['node', 'value', 'term'] or null, 'index' => …]; the value is as the leader proclaimed it (text). */
    public function leader(string $path): array
    {
        return $this->call('GET', self::url('/v1/elections', $path));
    }

    /** Long-poll: the leader state once it differs from the answer whose index is $after, or ['unchanged' => true] after $waitMs. */
    public function waitLeaderChange(string $path, string $after, int $waitMs = 30000): array
    {
        return $this->call('GET', self::url('/v1/elections', $path), null, ['wait' => $waitMs, 'after' => $after]);
    }

    /** The leader updates its value. @throws ZkgateException NOT_LEADER */
    public function proclaim(string $path, Lease|string $lease, string $node, string $value): array
    {
        return $this->call('PUT', self::url('/v1/elections', $path), ['leaseId' => self::leaseId($lease), 'node' => $node, 'value' => base64_encode($value), 'encoding' => 'base64']);
    }

    /** Leaves the election (idempotent); true when this call removed the candidacy. */
    public function resign(string $path, Lease|string $lease, string $node): bool
    {
        return (bool) $this->call('DELETE', self::url('/v1/elections', $path), null, ['leaseId' => self::leaseId($lease), 'node' => $node])['resigned'];
    }

    // ---------------------------------------------------------------------------------------
    // watch (long-poll)

    /**
     * One long-poll on a node: answers at once when its state differs from $index (the index of the
     * state last seen, '0' for none), else when it changes, else after $waitMs.
     * @return array{changed: bool, index: string, node: ?array} node is null while the node does not exist
     */
    public function poll(string $path, string $index = '0', int $waitMs = 30000): array
    {
        [$status, $answer, $headers] = $this->request('GET', self::url('/v1/nodes', $path), null, ['wait' => $waitMs, 'index' => $index, 'encoding' => 'base64']);
        if ($status !== 200 && !($status === 404 && ($answer['code'] ?? '') === 'NO_NODE')) {
            throw self::problem($status, $answer);
        }
        return [
            'changed' => ($headers['x-zkgate-unchanged'] ?? '') !== 'true',
            'index' => $headers['x-zkgate-index'] ?? $index,
            'node' => $status === 200 ? self::bytes($answer) : null,
        ];
    }

    /**
     * Calls $onChange($node) with the node's current state, then with every new state (null while
     * it does not exist), until $onChange returns false. Many such watchers share one ZooKeeper
     * watch in the gateway.
     */
    public function watch(string $path, callable $onChange, int $waitMs = 30000): void
    {
        $index = '0';
        $first = true;
        while (true) {
            $seen = $this->poll($path, $index, $waitMs);
            $index = $seen['index'];
            if (!$seen['changed'] && !$first) {
                continue;
            }
            $first = false;
            if ($onChange($seen['node']) === false) {
                return;
            }
        }
    }
}
