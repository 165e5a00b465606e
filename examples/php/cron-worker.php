<?php
// Seed 003's distributed cron, one worker of N: the same script on every server, firing every
// INTERVAL_MS. On each trigger it
//   - claims the run-once job's run for the trigger: exactly one worker of all runs it;
//   - syncs as a member of the sharded job and processes the trigger for its own shard items only.
// A worker that dies (kill -9) loses its lease after TTL_MS: its half-done runs turn orphaned and
// its items move to the others, who catch up on the recent triggers of what they take over
// (each run of a trigger, or of a (trigger, item), is still claimed once: never twice at once).
//
//   php examples/php/cron-worker.php
//
// Environment: ZKGATE_URL, ZKGATE_API_KEY; WORKER (member id, default host:pid); ONCE_JOB
// (default report), SHARD_JOB (default sms), SHARDS (default 8); INTERVAL_MS (default 1500);
// T0_MS (when trigger 0 fires, ms since the epoch; default now); TRIGGERS (stop after this many;
// default run forever); CATCHUP (recent triggers re-checked, default 8); TTL_MS (default 4000);
// WORK_MS (time per run, default 50); LOG (a file: one line per start and end, appended in one
// write each — O_APPEND — so several workers can share it).
require __DIR__ . '/../../clients/php/autoload.php';

use Zkgate\Client;
use Zkgate\Lease;
use Zkgate\ZkgateException;

$me = getenv('WORKER') ?: gethostname() . ':' . getmypid();
$onceJob = getenv('ONCE_JOB') ?: 'report';
$shardJob = getenv('SHARD_JOB') ?: 'sms';
$shards = (int) (getenv('SHARDS') ?: 8);
$interval = (int) (getenv('INTERVAL_MS') ?: 1500);
$t0 = (int) (getenv('T0_MS') ?: (int) (microtime(true) * 1000));
$triggers = (int) (getenv('TRIGGERS') ?: PHP_INT_MAX);
$catchup = (int) (getenv('CATCHUP') ?: 8);
$ttlMs = (int) (getenv('TTL_MS') ?: 4000);
$workMs = (int) (getenv('WORK_MS') ?: 50);
$log = getenv('LOG') ?: null;

function say(?string $log, string $line): void
{
    echo "$line\n";
    if ($log !== null) {
        file_put_contents($log, "$line\n", FILE_APPEND);
    }
}

function now_ms(): int
{
    return (int) (microtime(true) * 1000);
}

/** Sleeps until $until (ms since the epoch), keeping the lease alive meanwhile. */
function sleep_until(int $until, Lease $lease): void
{
    while (($left = $until - now_ms()) > 0) {
        $lease->keepAliveIfDue();
        usleep(min($left, 100) * 1000);
    }
}

/** Runs one claimed run: the work between a START and an END line, then reports it. */
function run_it(Client $zk, Lease $lease, string $job, array $run, string $what, string $me, int $workMs, ?string $log): void
{
    say($log, "START $what $me attempt={$run['attempt']}");
    usleep($workMs * 1000); // the job's work; a long one would keepAliveIfDue() as it goes
    say($log, "END $what $me");
    $zk->completeRun($job, $run['runId'], $lease);
}

$zk = Client::fromEnv();
$zk->putJob($onceJob);
$zk->putJob($shardJob, ['shardCount' => $shards]);
$lease = null;
$held = [];   // item => the first trigger this worker is sure it covered for it
$n = max(0, intdiv(now_ms() - $t0, $interval));
while ($n < $triggers + $catchup) {
    try {
        if ($lease === null) {
            $lease = $zk->grantLease($ttlMs);
            $zk->joinJob($shardJob, $me, $lease);
            $held = [];
            say($log, "JOIN $me lease={$lease->id}");
        }
        sleep_until($t0 + $n * $interval, $lease);
        $last = min($n, $triggers - 1);
        // Run once: this trigger, and the recent ones in case a run was orphaned (its claimer died).
        for ($t = $last; $t >= max(0, $n - $catchup); $t--) {
            $run = $zk->claimRun($onceJob, "t$t", $lease, $me);
            if ($run !== null) {
                run_it($zk, $lease, $onceJob, $run, "once t$t", $me, $workMs, $log);
            }
            $lease->keepAliveIfDue();
        }
        // Sharded: only the items this sync returns; an item just taken over is caught up on.
        $view = $zk->syncJob($shardJob, $me, $lease);
        $mine = $view['state'] === 'active' ? $view['items'] : [];
        $held = array_intersect_key($held, array_flip($mine));
        foreach ($mine as $item) {
            $from = $held[$item] ?? max(0, $n - $catchup);
            for ($t = $from; $t <= $last; $t++) {
                $run = $zk->claimRun($shardJob, "t$t", $lease, $me, $item);
                if ($run !== null) {
                    run_it($zk, $lease, $shardJob, $run, "shard t$t $item", $me, $workMs, $log);
                }
                $lease->keepAliveIfDue();
            }
            $held[$item] = $last + 1;
        }
        $n++;
    } catch (ZkgateException $e) {
        if (in_array($e->errorCode, ['LEASE_EXPIRED', 'LEASE_REVOKED', 'LEASE_LOST', 'LEASE_NOT_FOUND', 'NOT_JOB_MEMBER'], true)) {
            // Our lease ended (we stalled past its TTL): whatever we held is gone; start again.
            say($log, "LOST $me {$e->errorCode}");
            $lease = null;
            continue;
        }
        say($log, "ERROR $me {$e->getMessage()}");
        usleep(200 * 1000);
    }
}
$zk->leaveJob($shardJob, $me, $lease);
$lease->revoke();
say($log, "DONE $me");
