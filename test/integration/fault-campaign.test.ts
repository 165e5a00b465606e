/**
 * The short fault campaign (one round of the schedule in test/faults/campaign.ts, about two
 * minutes, with a 6 s gateway session) with the targets as assertions: no overlapping holds without a prior loss
 * report, fencing tokens in order, no acknowledged write lost, no watch subscriber left with a
 * silent gap, no gateway session expiry while a quorum is up and the gateway runs, and the
 * gateway back on a healthy member within 1.5x Kazoo's time on the same fault. The long run is
 * `npm run test:faults` (README, "Fault campaign").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReport, missedTargets, runCampaign } from '../faults/campaign.js';

test('fault campaign (short): the targets hold through every scripted fault', { timeout: 600_000 }, async (t) => {
  // A 6 s session keeps the two freezes (session timeout + 2 s each) short.
  const report = await runCampaign({ rounds: 1, settleMs: 1500, sessionTimeoutMs: 6000, progress: (l) => console.log(`# ${l}`) });
  for (const line of formatReport(report)) t.diagnostic(line);
  assert.ok(report.locks.acquisitions > 0 && report.elections.acquisitions > 0 && report.writes.acknowledged > 0, 'the load ran');
  assert.deepEqual(missedTargets(report), []);
});
