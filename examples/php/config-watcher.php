<?php
// A config watcher in plain PHP (php-curl, no ZooKeeper extension): it loops on zkgate's
// long-poll ("blocking query") through the PHP client in clients/php and prints every new version
// of a config znode as it happens.
//
//   php examples/php/config-watcher.php [gateway-url] [znode-path] [changes-to-print (0 = forever)]
//   ZKGATE_API_KEY=zkg_… php examples/php/config-watcher.php http://127.0.0.1:8080 /config/app
//
// Each request sends the index (X-Zkgate-Index) of the state it last saw and waits up to 30 s.
// The gateway answers at once when the node is newer, else when it changes, else after the wait
// with the unchanged state. Thousands of such watchers on one node cost the gateway a single
// ZooKeeper watch.
require __DIR__ . '/../../clients/php/autoload.php';

use Zkgate\Client;
use Zkgate\ZkgateException;

$gateway = $argv[1] ?? (getenv('ZKGATE_URL') ?: 'http://127.0.0.1:8080');
$path = $argv[2] ?? '/config/app';
$max = (int) ($argv[3] ?? 0);
$zk = new Client($gateway, getenv('ZKGATE_API_KEY') ?: null); // a read key is enough

$printed = 0;
while (true) {
    try {
        $zk->watch($path, function (?array $node) use ($path, $max, &$printed) {
            echo $node === null ? "$path does not exist\n" : "$path version {$node['stat']['version']}: {$node['data']}\n";
            $printed++;
            return $max === 0 || $printed < $max;
        });
        exit(0);
    } catch (ZkgateException $e) {
        if ($e->status !== 0 && $e->status < 500) {
            fwrite(STDERR, "refused: {$e->getMessage()}\n");
            exit(1);
        }
        fwrite(STDERR, "gateway unreachable: {$e->getMessage()}; retrying\n");
        sleep(1);
    }
}
