<?php
// A service consumer: follows a service's instances with long-polls (one request waits for the
// next change) and calls one instance per tick, round-robin, as a client-side load balancer.
//
//   php examples/php/service-consumer.php <service> [ticks]
//
// Prints "Instances <n>: <id,id,…>" whenever the set changes and "Call <id> <uri>" per tick
// ("No instance" when none is registered). Environment: ZKGATE_URL, ZKGATE_API_KEY,
// BASE (default /services), TICK_MS (default 500).
require __DIR__ . '/../../clients/php/autoload.php';

use Zkgate\Client;
use Zkgate\ZkgateException;

$service = $argv[1] ?? 'orders';
$ticks = (int) ($argv[2] ?? 20);
$base = getenv('BASE') ?: '/services';
$tickMs = (int) (getenv('TICK_MS') ?: 500);
$client = new Client(getenv('ZKGATE_URL') ?: 'http://127.0.0.1:8080', getenv('ZKGATE_API_KEY') ?: null);

$set = $client->call('GET', "/v1/services/$service", null, ['base' => $base]);
$show = function (array $set): void {
    $ids = array_map(fn ($i) => $i['id'], $set['instances']);
    echo 'Instances ' . count($ids) . ': ' . implode(',', $ids) . "\n";
};
$show($set);
for ($tick = 0; $tick < $ticks; $tick++) {
    // Wait up to one tick for a change after the index we saw (Consul-style blocking query).
    $next = $client->call('GET', "/v1/services/$service", null, ['base' => $base, 'wait' => $tickMs, 'index' => $set['index']]);
    if (!$next['unchanged']) {
        $set = $next;
        $show($set);
    }
    try {
        $pick = $client->call('GET', "/v1/services/$service/pick", null, ['base' => $base, 'caller' => 'consumer-' . getmypid()]);
        echo "Call {$pick['id']} {$pick['uri']}\n";
    } catch (ZkgateException $e) {
        if ($e->errorCode !== 'NO_INSTANCES') {
            throw $e;
        }
        echo "No instance\n";
    }
}
