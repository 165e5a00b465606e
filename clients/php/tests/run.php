<?php
// The PHP client against a real gateway: php clients/php/tests/run.php (ZKGATE_URL, ZKGATE_API_KEY).
// Plain PHP, no test framework: each check prints "ok - …" or fails the run with "not ok - …".
declare(strict_types=1);

require __DIR__ . '/../autoload.php';

use Zkgate\Client;
use Zkgate\Lease;
use Zkgate\ZkgateException;

$zk = Client::fromEnv();
$root = '/php-client-' . bin2hex(random_bytes(4));
$failed = 0;

function check(string $name, callable $fn): void
{
    global $failed;
    try {
        $fn();
        echo "ok - $name\n";
    } catch (Throwable $e) {
        $failed++;
        echo "not ok - $name: " . get_class($e) . ': ' . $e->getMessage() . "\n";
    }
}

function same(mixed $expected, mixed $actual, string $what = ''): void
{
    if ($expected !== $actual) {
        throw new RuntimeException("$what: expected " . var_export($expected, true) . ', got ' . var_export($actual, true));
    }
}

function refused(string $code, callable $fn): ZkgateException
{
    try {
        $fn();
    } catch (ZkgateException $e) {
        same($code, $e->errorCode, 'error code');
        return $e;
    }
    throw new RuntimeException("expected $code, nothing was thrown");
}

check('znodes: create, get (binary data), set with a version, children, delete', function () use ($zk, $root) {
    same("$root/cfg", $zk->create("$root/cfg", "a\x00b\xff", ['createParents' => true]));
    $node = $zk->get("$root/cfg");
    same("a\x00b\xff", $node['data'], 'binary data round-trips');
    same(0, $node['stat']['version']);
    same(1, $zk->set("$root/cfg", 'v1', 0)['version']);
    refused('BAD_VERSION', fn () => $zk->set("$root/cfg", 'v2', 0));
    $seq = $zk->create("$root/q/job-", '', ['mode' => 'persistent_sequential', 'createParents' => true]);
    same(1, preg_match('~/q/job-\d{10}$~', $seq), "sequential path $seq");
    same(['cfg', 'q'], $zk->children($root));
    same('cfg', $zk->children($root, true)[0]['name']);
    same(null, $zk->exists("$root/nope"));
    $e = refused('NO_NODE', fn () => $zk->create("$root/a/b", 'x'));
    same("$root/a", $e->details['parent'] ?? null, 'the missing parent is named');
    refused('NODE_EXISTS', fn () => $zk->create("$root/cfg"));
    refused('NOT_EMPTY', fn () => $zk->delete("$root/q"));
    $zk->delete("$root/q", null, true);
    same(['cfg'], $zk->children($root));
});

check('leases: ephemeral owned by a lease, keepAliveIfDue, revoke deletes it', function () use ($zk, $root) {
    $lease = $zk->grantLease(3000);
    same('active', $lease->info['state']);
    $zk->create("$root/eph", 'me', ['mode' => 'ephemeral', 'lease' => $lease]);
    same(false, $lease->keepAliveIfDue(), 'nothing due right after the grant');
    usleep(1100 * 1000);
    same(true, $lease->keepAliveIfDue(), 'due after a third of the TTL');
    same('active', $lease->info()['state']);
    $lease->revoke();
    same(null, $zk->exists("$root/eph"), 'revoked lease took its ephemeral along');
    refused('LEASE_REVOKED', fn () => $lease->keepAlive());
    $lease->revoke(); // idempotent
});

check('locks: lock, a second lease is refused with the holder, withLock, fencing tokens rise', function () use ($zk, $root) {
    $a = $zk->grantLease(10000);
    $b = $zk->grantLease(10000);
    $hold = $zk->lock("$root/lock", $a, 1000, 'holder-a');
    $e = refused('LOCK_NOT_ACQUIRED', fn () => $zk->lock("$root/lock", $b, 0));
    same($hold['node'], $e->details['holder'] ?? null, 'the refusal names the holder');
    same($hold['node'], $zk->inspectLock("$root/lock")['holder']['node']);
    same(true, $zk->unlock("$root/lock", $a, $hold['node']));
    same(false, $zk->unlock("$root/lock", $a, $hold['node']));
    $token = $zk->withLock("$root/lock", fn (array $h) => $h['fencingToken'], 1000);
    same(true, bccomp_safe($token, $hold['fencingToken']) > 0, 'fencing token rises');
    same(null, $zk->inspectLock("$root/lock")['holder'], 'withLock released');
    $a->revoke();
    $b->revoke();
});

function bccomp_safe(string $x, string $y): int
{
    return strlen($x) === strlen($y) ? strcmp($x, $y) : strlen($x) <=> strlen($y);
}

check('elections: campaign, leader, proclaim, a second candidate waits, resign hands over', function () use ($zk, $root) {
    $a = $zk->grantLease(10000);
    $b = $zk->grantLease(10000);
    $won = $zk->campaign("$root/election", $a, 'host-a', 1000);
    same(true, $won['leader']);
    $state = $zk->leader("$root/election");
    same('host-a', $state['leader']['value']);
    $zk->proclaim("$root/election", $a, $won['node'], 'host-a:2');
    same('host-a:2', $zk->leader("$root/election")['leader']['value']);
    refused('NOT_ELECTED', fn () => $zk->campaign("$root/election", $b, 'host-b', 0));
    $before = $zk->leader("$root/election")['index'];
    same(true, $zk->resign("$root/election", $a, $won['node']));
    $changed = $zk->waitLeaderChange("$root/election", $before, 5000);
    same(null, $changed['leader'], 'nobody leads after the resign');
    same(true, $zk->campaign("$root/election", $b, 'host-b', 1000)['leader']);
    $a->revoke();
    $b->revoke();
});

check('watch: poll answers at once when stale, waits for a change, and watch() sees each version', function () use ($zk, $root) {
    $first = $zk->poll("$root/cfg", '0', 5000);
    same(true, $first['changed']);
    same('v1', $first['node']['data']);
    $quiet = $zk->poll("$root/cfg", $first['index'], 1000);
    same(false, $quiet['changed'], 'no change within the wait');
    $seen = [];
    $zk->watch("$root/cfg", function (?array $node) use (&$seen, $zk, $root) {
        $seen[] = $node === null ? null : $node['data'];
        if (count($seen) === 1) {
            $zk->set("$root/cfg", 'v2');
        } elseif (count($seen) === 2) {
            $zk->delete("$root/cfg");
        }
        return count($seen) < 3;
    }, 5000);
    same(['v1', 'v2', null], $seen);
});

try {
    $zk->delete($root, null, true);
} catch (ZkgateException $e) {
    echo "# cleanup: {$e->getMessage()}\n";
}
echo $failed === 0 ? "# all passed\n" : "# $failed failed\n";
exit($failed === 0 ? 0 : 1);
