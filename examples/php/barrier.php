<?php
// Barriers from plain PHP (Curator DistributedBarrier / DistributedDoubleBarrier layouts, so Java
// services using Curator meet PHP workers at the same barrier).
//
//   php examples/php/barrier.php double <path> <members> [workMs]   # a double-barrier member
//   php examples/php/barrier.php wait <path> [waitMs]               # wait until a simple barrier is removed
//
// double: enters, prints "ENTERED <me> <members seen>" once <members> have entered, works for
// workMs (default 200), prints "LEAVING <me>", leaves and prints "LEFT <me>" once every member
// has left. Its lease is kept alive while it waits; if the process dies, the lease's TTL removes
// its member node. wait: prints "PASSED" once the barrier is removed (exit 0), or "STILL SET"
// after waitMs (exit 3).
// Environment: ZKGATE_URL, ZKGATE_API_KEY, TTL_MS (lease TTL, default 10000), WORKER, WAIT_MS
// (longest wait at the barrier, default 60000).
require __DIR__ . '/../../clients/php/autoload.php';

use Zkgate\Client;
use Zkgate\ZkgateException;

$mode = $argv[1] ?? '';
$path = $argv[2] ?? '/barriers/demo';
$zk = Client::fromEnv();
$me = getenv('WORKER') ?: gethostname() . ':' . getmypid();

try {
    if ($mode === 'wait') {
        $passed = $zk->waitOnBarrier($path, (int) ($argv[3] ?? 60000));
        echo $passed ? "PASSED\n" : "STILL SET\n";
        exit($passed ? 0 : 3);
    }
    if ($mode !== 'double') {
        fwrite(STDERR, "usage: barrier.php double <path> <members> [workMs] | barrier.php wait <path> [waitMs]\n");
        exit(2);
    }
    $members = (int) ($argv[3] ?? 2);
    $workMs = (int) ($argv[4] ?? 200);
    $waitMs = (int) (getenv('WAIT_MS') ?: 60000);
    $ttlMs = (int) (getenv('TTL_MS') ?: 10000);
    $zk->withLease($ttlMs, function ($lease) use ($zk, $path, $members, $workMs, $waitMs, $ttlMs, $me) {
        // Waits in slices of a third of the TTL, keeping the lease alive in between: a slice
        // that ends with BARRIER_TIMEOUT only means "not yet" (its member node is deleted), so enter again.
        $deadline = microtime(true) + $waitMs / 1000;
        for (;;) {
            try {
                $entry = $zk->enterBarrier($path, $lease, $members, min(intdiv($ttlMs, 3), $waitMs));
                break;
            } catch (ZkgateException $e) {
                if ($e->errorCode !== 'BARRIER_TIMEOUT' || microtime(true) > $deadline) {
                    throw $e;
                }
                $lease->keepAlive();
            }
        }
        echo "ENTERED $me {$entry['members']}\n";
        usleep($workMs * 1000); // the work everyone starts together
        $lease->keepAliveIfDue();
        echo "LEAVING $me\n";
        $zk->leaveBarrier($path, $lease, $entry['node'], $waitMs); // our node is gone now: the lease may lapse meanwhile
        echo "LEFT $me\n";
    });
} catch (ZkgateException $e) {
    fwrite(STDERR, "barrier failed: {$e->errorCode} {$e->getMessage()}\n");
    exit(1);
}
