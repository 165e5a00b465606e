<?php
// Seed 000's leader-election worker, rewritten for zkgate: plain PHP + php-curl (the zkgate PHP
// client in clients/php) instead of the php-zookeeper extension. Start several; one leads, the
// others work; kill the leader and another takes over within the lease TTL.
//
//   ZKGATE_URL=http://127.0.0.1:8080 WORKER=w1 php examples/php/leader-worker.php
//
// Environment: ELECTION (default /cluster), TTL_MS (lease TTL, default 3000), TICK_MS (loop period,
// default 500), WORKER (this worker's name, default host:pid), RUN_FOR_MS (stop after this long,
// resigning; default: run until killed).
require __DIR__ . '/../../clients/php/autoload.php';

use Zkgate\Client;
use Zkgate\ZkgateException;

$election = getenv('ELECTION') ?: '/cluster';
$ttlMs = (int) (getenv('TTL_MS') ?: 3000);
$tickMs = (int) (getenv('TICK_MS') ?: 500);
$runForMs = (int) (getenv('RUN_FOR_MS') ?: 0);
$me = getenv('WORKER') ?: gethostname() . ':' . getmypid();
$started = microtime(true);

function say(string $line): void
{
    fwrite(STDOUT, $line . "\n"); // workers run under supervisors that read their output live
    fflush(STDOUT);
}

$zk = Client::fromEnv();
// A lease stands in for the ZooKeeper session: our candidacy dies with it. While the gateway or
// its ZooKeeper is unavailable (503, or unreachable), try again.
while (true) {
    try {
        $lease = $zk->grantLease($ttlMs);
        break;
    } catch (ZkgateException $e) {
        if ($e->status !== 0 && $e->status < 500) {
            throw $e;
        }
        say("gateway unavailable ({$e->errorCode}), retrying");
        usleep($tickMs * 1000);
    }
}
say("I'm registered as: $me (lease {$lease->id})");

$node = null;      // our leader node while we lead
$watching = null;  // the leader we last saw, while we work
while ($runForMs === 0 || (microtime(true) - $started) * 1000 < $runForMs) {
    try {
        $lease->keepAlive();
    } catch (ZkgateException $e) {
        if (!in_array($e->errorCode, ['LEASE_EXPIRED', 'LEASE_REVOKED', 'LEASE_LOST', 'LEASE_NOT_FOUND'], true)) {
            say("keepalive failed ({$e->errorCode}), retrying"); // uncertain or unreachable for now
            usleep($tickMs * 1000);
            continue;
        }
        // Expired, revoked or lost: whatever we led is gone. Say so and stop.
        say("Lost my lease ($e->status $e->errorCode), stopping" . ($node ? ' as leader' : ''));
        exit(2);
    }
    if ($node !== null) {
        say('Leading');
        usleep($tickMs * 1000);
        continue;
    }
    // Campaign: wait a little (well below the TTL, so the keepalives keep coming).
    try {
        $won = $zk->campaign($election, $lease, $me, (int) min($tickMs, $ttlMs / 3));
        $node = $won['node'];
        say($watching === null ? "Nobody here, I'm the leader (term {$won['term']})" : "I'm the new leader! (term {$won['term']})");
    } catch (ZkgateException $e) {
        if ($e->errorCode !== 'NOT_ELECTED') {
            say("campaign failed: {$e->getMessage()}");
            usleep($tickMs * 1000);
            continue;
        }
        $leader = $zk->leader($election)['leader']['value'] ?? 'nobody';
        if ($leader !== $watching) {
            say("Now I'm watching $leader");
            $watching = $leader;
        }
        say('Working');
    }
}
// Asked to stop: give the lease back (our candidacy and leadership go with it).
$lease->revoke();
say('Stopped');
