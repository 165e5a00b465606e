<?php
// Take a lock around a critical section, as a cron job would: only one run at a time, across hosts.
//
//   php examples/php/lock.php <lockPath> [waitMs] [-- command ...]
//
// Without a command it appends "ENTER <id>" / "EXIT <id>" to $LOG (if set) around a HOLD_MS sleep.
// Exit codes: 0 done; 3 the lock was busy (another run holds it); 1 an error.
require __DIR__ . '/zkgate.php';

$lockPath = $argv[1] ?? '/cron/nightly';
$waitMs = (int) ($argv[2] ?? 0);
$id = getenv('RUN_ID') ?: gethostname() . ':' . getmypid();
$ttlMs = (int) (getenv('TTL_MS') ?: 10000);

[$status, $lease] = zkgate('POST', '/v1/leases', ['ttlMs' => $ttlMs]);
if ($status !== 201) {
    fwrite(STDERR, "cannot grant a lease: $status\n");
    exit(1);
}
$leaseId = $lease['id'];
// Whatever happens, give the lease back (the lock goes with it).
register_shutdown_function(fn () => zkgate('DELETE', "/v1/leases/$leaseId"));

[$status, $hold] = zkgate('POST', "/v1/locks$lockPath", ['leaseId' => $leaseId, 'waitMs' => $waitMs, 'data' => $id]);
if ($status === 409) {
    say("busy: $lockPath is held by " . ($hold['details']['holder'] ?? '?') . ', skipping this run');
    exit(3);
}
if ($status !== 200) {
    fwrite(STDERR, "lock failed: $status " . json_encode($hold) . "\n");
    exit(1);
}
say("locked $lockPath (fencing token {$hold['fencingToken']})");

// The critical section. Pass the fencing token to whatever you write, so a stale holder is refused.
$log = getenv('LOG');
if ($log) {
    file_put_contents($log, "ENTER $id {$hold['fencingToken']}\n", FILE_APPEND);
}
usleep((int) (getenv('HOLD_MS') ?: 200) * 1000);
if ($log) {
    file_put_contents($log, "EXIT $id {$hold['fencingToken']}\n", FILE_APPEND);
}

[$status, $released] = zkgate('DELETE', "/v1/locks$lockPath", null, ['leaseId' => $leaseId, 'node' => $hold['node']]);
say($status === 200 && $released['released'] ? 'released' : "release: $status " . json_encode($released));
exit(0);
