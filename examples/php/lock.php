<?php
// Take a lock around a critical section, as a cron job would: only one run at a time, across hosts.
//
//   php examples/php/lock.php <lockPath> [waitMs] [-- command [args...]]
//
// With a command, runs it while holding the lock (keeping the lock's lease alive meanwhile), with
// ZKGATE_FENCING_TOKEN and ZKGATE_LOCK_NODE in its environment, and exits with its exit code.
// Without one it appends "ENTER <id>" / "EXIT <id>" to $LOG (if set) around a HOLD_MS sleep.
// Exit codes: 0 done (or the command's own); 3 the lock was busy (another run holds it); 1 an error.
// Environment: ZKGATE_URL, ZKGATE_API_KEY, TTL_MS (lease TTL, default 10000), RUN_ID.
require __DIR__ . '/../../clients/php/autoload.php';

use Zkgate\Client;
use Zkgate\ZkgateException;

$args = array_slice($argv, 1);
$dash = array_search('--', $args, true);
$command = $dash === false ? [] : array_slice($args, $dash + 1);
$args = $dash === false ? $args : array_slice($args, 0, $dash);
$lockPath = $args[0] ?? '/cron/nightly';
$waitMs = (int) ($args[1] ?? 0);
$id = getenv('RUN_ID') ?: gethostname() . ':' . getmypid();
$ttlMs = (int) (getenv('TTL_MS') ?: 10000);

/** Runs $command with the hold in its environment, keeping the lease alive; returns its exit code. */
function run_holding(array $command, array $hold): int
{
    $env = array_merge(getenv(), ['ZKGATE_FENCING_TOKEN' => $hold['fencingToken'], 'ZKGATE_LOCK_NODE' => $hold['node']]);
    $proc = proc_open($command, [STDIN, STDOUT, STDERR], $pipes, null, $env);
    if ($proc === false) {
        fwrite(STDERR, "cannot run {$command[0]}\n");
        return 1;
    }
    while (($status = proc_get_status($proc))['running']) {
        $hold['lease']->keepAliveIfDue();
        usleep(100 * 1000);
    }
    proc_close($proc);
    return $status['exitcode'];
}

$zk = Client::fromEnv();
try {
    $code = $zk->withLock($lockPath, function (array $hold) use ($lockPath, $command, $id) {
        fwrite(STDOUT, "locked $lockPath (fencing token {$hold['fencingToken']})\n");
        if ($command) {
            return run_holding($command, $hold);
        }
        // The critical section. Pass the fencing token to whatever you write, so a stale holder is refused.
        $log = getenv('LOG');
        if ($log) {
            file_put_contents($log, "ENTER $id {$hold['fencingToken']}\n", FILE_APPEND);
        }
        usleep((int) (getenv('HOLD_MS') ?: 200) * 1000);
        if ($log) {
            file_put_contents($log, "EXIT $id {$hold['fencingToken']}\n", FILE_APPEND);
        }
        return 0;
    }, $waitMs, $ttlMs, $id);
    echo "released\n";
    exit($code);
} catch (ZkgateException $e) {
    if ($e->errorCode === 'LOCK_NOT_ACQUIRED') {
        echo "busy: $lockPath is held by " . ($e->details['holder'] ?? '?') . ", skipping this run\n";
        exit(3);
    }
    fwrite(STDERR, "lock failed: {$e->getMessage()}\n");
    exit(1);
}
