<?php
// Seed 000's leader-election worker, rewritten for zkgate: plain PHP + php-curl instead of the
// php-zookeeper extension. Start several; one leads, the others work; kill the leader and another
// takes over within the lease TTL.
//
//   ZKGATE_URL=http://127.0.0.1:8080 WORKER=w1 php examples/php/leader-worker.php
//
// Environment: ELECTION (default /cluster), TTL_MS (lease TTL, default 3000), TICK_MS (loop period,
// default 500), WORKER (this worker's name, default host:pid).
require __DIR__ . '/zkgate.php';

$election = getenv('ELECTION') ?: '/cluster';
$ttlMs = (int) (getenv('TTL_MS') ?: 3000);
$tickMs = (int) (getenv('TICK_MS') ?: 500);
$me = getenv('WORKER') ?: gethostname() . ':' . getmypid();

// A lease stands in for the ZooKeeper session: our candidacy dies with it.
[$status, $lease] = zkgate('POST', '/v1/leases', ['ttlMs' => $ttlMs]);
if ($status !== 201) {
    fwrite(STDERR, "cannot grant a lease: $status " . json_encode($lease) . "\n");
    exit(1);
}
$leaseId = $lease['id'];
say("I'm registered as: $me (lease $leaseId)");

$node = null;      // our leader node while we lead
$watching = null;  // the leader we last saw, while we work
while (true) {
    [$status, $info] = zkgate('POST', "/v1/leases/$leaseId/keepalive");
    if ($status !== 200) {
        // Expired, revoked or lost: whatever we led is gone. Say so and stop.
        say("Lost my lease ($status " . ($info['code'] ?? '') . "), stopping" . ($node ? ' as leader' : ''));
        exit(2);
    }
    if ($node !== null) {
        say('Leading');
        usleep($tickMs * 1000);
        continue;
    }
    // Campaign: wait a little (well below the TTL, so the keepalives keep coming).
    $wait = (int) min($tickMs, $ttlMs / 3);
    [$status, $won] = zkgate('POST', "/v1/elections$election", ['leaseId' => $leaseId, 'value' => $me, 'waitMs' => $wait]);
    if ($status === 200) {
        $node = $won['node'];
        say($watching === null ? "Nobody here, I'm the leader (term {$won['term']})" : "I'm the new leader! (term {$won['term']})");
    } elseif ($status === 409) {
        [, $now] = zkgate('GET', "/v1/elections$election");
        $leader = $now['leader']['value'] ?? 'nobody';
        if ($leader !== $watching) {
            say("Now I'm watching $leader");
            $watching = $leader;
        }
        say('Working');
    } else {
        say("campaign failed: $status " . json_encode($won));
        usleep($tickMs * 1000);
    }
}
