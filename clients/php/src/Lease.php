<?php
declare(strict_types=1);

namespace Zkgate;

/**
 * A granted lease. PHP has no background thread, so keep it alive from your loop with
 * keepAliveIfDue() (cheap when nothing is due) or keepAlive(); revoke() ends it and everything it
 * owns (ephemeral nodes, lock holds, candidacies).
 */
class Lease
{
    private float $lastKeepAlive;

    /** @param array<string, mixed> $info the gateway's answer (id, ttlMs, state, …) */
    public function __construct(private readonly Client $client, public readonly string $id, public readonly int $ttlMs, public array $info)
    {
        $this->lastKeepAlive = microtime(true);
    }

    /** Refreshes the lease now. @throws ZkgateException LEASE_EXPIRED / LEASE_REVOKED / LEASE_LOST once it has ended */
    public function keepAlive(): array
    {
        $this->info = $this->client->call('POST', '/v1/leases/' . rawurlencode($this->id) . '/keepalive');
        $this->lastKeepAlive = microtime(true);
        return $this->info;
    }

    /**
     * Refreshes the lease when a third of its TTL has passed since the last refresh (so two can
     * still fail before it expires); returns whether it sent one.
     */
    public function keepAliveIfDue(): bool
    {
        if ((microtime(true) - $this->lastKeepAlive) * 1000 < $this->ttlMs / 3) {
            return false;
        }
        $this->keepAlive();
        return true;
    }

    /** The lease's current state (state, remainingMs, owned …). */
    public function info(): array
    {
        return $this->info = $this->client->call('GET', '/v1/leases/' . rawurlencode($this->id));
    }

    /** Ends the lease; what it owns is deleted now. Ignores a lease that has already ended. */
    public function revoke(): void
    {
        try {
            $this->client->call('DELETE', '/v1/leases/' . rawurlencode($this->id));
        } catch (ZkgateException $e) {
            if (!in_array($e->errorCode, ['LEASE_NOT_FOUND', 'LEASE_EXPIRED', 'LEASE_REVOKED', 'LEASE_LOST'], true)) {
                throw $e;
            }
        }
    }
}
