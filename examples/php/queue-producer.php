<?php
// Puts work items on a zkgate queue (Curator SimpleDistributedQueue layout: Java services using
// Curator's queue on the same path see the same items).
//
//   php examples/php/queue-producer.php <queuePath> <count> [prefix]
//
// Puts <count> items "<prefix>-1" … "<prefix>-<count>" and prints each item's name.
// Environment: ZKGATE_URL, ZKGATE_API_KEY.
require __DIR__ . '/../../clients/php/autoload.php';

use Zkgate\Client;
use Zkgate\ZkgateException;

$queue = $argv[1] ?? '/jobs/mail';
$count = (int) ($argv[2] ?? 10);
$prefix = $argv[3] ?? 'job';

$zk = Client::fromEnv();
try {
    for ($i = 1; $i <= $count; $i++) {
        for ($try = 1; ; $try++) {
            try {
                $put = $zk->put($queue, "$prefix-$i");
                break;
            } catch (ZkgateException $e) {
                // ZooKeeper briefly unreachable: retry, unless the put may have been applied (a retry could add it twice).
                if ($e->errorCode !== 'UNAVAILABLE' || ($e->details['outcome'] ?? '') === 'unknown' || $try >= 20) {
                    throw $e;
                }
                usleep(250 * 1000);
            }
        }
        echo "PUT $prefix-$i {$put['item']}\n";
    }
} catch (ZkgateException $e) {
    fwrite(STDERR, "put failed: {$e->getMessage()}\n");
    exit(1);
}
