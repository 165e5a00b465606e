<?php
// A service provider (seed 004's naming service): registers this process as an instance of a
// service under a lease, keeps the lease alive while it serves, deregisters on SIGTERM/SIGINT.
// If the process dies, its keepalives stop and the instance disappears within the lease TTL.
// Curator's ServiceDiscovery on the same base path sees the instance (x-discovery layout).
//
//   php examples/php/service-provider.php <service> <address> <port> [id]
//
// Prints "Registered <id> <uri>" once registered, "Deregistered <id>" on a clean stop.
// Environment: ZKGATE_URL, ZKGATE_API_KEY, BASE (default /services), TTL_MS (default 10000).
require __DIR__ . '/../../clients/php/autoload.php';

use Zkgate\Client;

[$service, $address, $port] = [$argv[1] ?? 'orders', $argv[2] ?? '127.0.0.1', (int) ($argv[3] ?? 8080)];
$id = $argv[4] ?? (gethostname() . '-' . getmypid());
$base = getenv('BASE') ?: '/services';
$client = new Client(getenv('ZKGATE_URL') ?: 'http://127.0.0.1:8080', getenv('ZKGATE_API_KEY') ?: null);
$lease = $client->grantLease((int) (getenv('TTL_MS') ?: 10000));

$reg = $client->call('POST', "/v1/services/$service/instances", [
    'leaseId' => $lease->id,
    'id' => $id,
    'address' => $address,
    'port' => $port,
    'uriSpec' => '{scheme}://{address}:{port}',
    'payload' => ['pid' => getmypid()],
], ['base' => $base]);
echo "Registered $id {$reg['instance']['uri']}\n";

$running = true;
pcntl_async_signals(true);
foreach ([SIGTERM, SIGINT] as $sig) {
    pcntl_signal($sig, function () use (&$running) { $running = false; });
}
while ($running) {
    $lease->keepAliveIfDue(); // the instance lives exactly as long as this loop
    usleep(200 * 1000);
}
$client->call('DELETE', "/v1/services/$service/instances/$id", null, ['base' => $base, 'leaseId' => $lease->id]);
$lease->revoke();
echo "Deregistered $id\n";
