<?php
// A queue worker with claim/ack (at least once): claims an item with a lease, works on it, acks
// it. If the worker dies before the ack (kill -9, a crash, a lost host), its lease runs out and
// the item is delivered to another worker — never lost, at worst done twice, so make the work
// idempotent (the claim's fencing token helps: it rises with every claim).
//
//   php examples/php/queue-worker.php <queuePath> [idleMs]
//
// Prints "CLAIM <data> <item>" when it claims an item and "ACK <data>" once acked; exits 0
// after the queue stayed empty for idleMs (default: run forever). With $LOG set it also
// appends those lines to $LOG (one write each).
// Environment: ZKGATE_URL, ZKGATE_API_KEY, TTL_MS (lease TTL, default 10000), WORK_MS (time per
// item, default 100), WORKER (a name for the output).
require __DIR__ . '/../../clients/php/autoload.php';

use Zkgate\Client;
use Zkgate\ZkgateException;

$queue = $argv[1] ?? '/jobs/mail';
$idleMs = (int) ($argv[2] ?? 0);
$ttlMs = (int) (getenv('TTL_MS') ?: 10000);
$workMs = (int) (getenv('WORK_MS') ?: 100);
$me = getenv('WORKER') ?: gethostname() . ':' . getmypid();
$log = getenv('LOG') ?: null;

function say(?string $log, string $line): void
{
    echo "$line\n";
    if ($log !== null) {
        file_put_contents($log, "$line\n", FILE_APPEND);
    }
}

$zk = Client::fromEnv();
$lease = $zk->grantLease($ttlMs);
try {
    for ($idle = false; !$idle;) {
        // Long-poll for the next item; a third of the TTL at most, so the lease is kept alive in between.
        $wait = $idleMs > 0 ? min($idleMs, intdiv($ttlMs, 3)) : intdiv($ttlMs, 3);
        $started = microtime(true);
        $job = null;
        while ($job === null && !$idle) {
            try {
                $job = $zk->claim($queue, $lease, $wait);
            } catch (ZkgateException $e) {
                if ($e->errorCode !== 'UNAVAILABLE' && $e->errorCode !== 'LEASE_UNCERTAIN') {
                    throw $e;
                }
                usleep(250 * 1000); // ZooKeeper briefly unreachable: the claim left nothing behind, try again
            }
            $lease->keepAliveIfDue();
            $idle = $job === null && $idleMs > 0 && (microtime(true) - $started) * 1000 >= $idleMs;
        }
        if ($job === null) {
            break;
        }
        say($log, "CLAIM $me {$job['data']} {$job['item']}");
        usleep($workMs * 1000); // the work; keep it shorter than the TTL or call keepAliveIfDue()
        $lease->keepAliveIfDue();
        $zk->ack($queue, $lease, $job['item']);
        say($log, "ACK $me {$job['data']}");
    }
} catch (ZkgateException $e) {
    fwrite(STDERR, "worker failed: {$e->errorCode} {$e->getMessage()}\n");
    exit(1);
} finally {
    $lease->revoke();
}
