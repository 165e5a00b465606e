/**
 * `npm run test:faults [-- --rounds N]`: runs the fault campaign (test/faults/campaign.ts) and
 * prints, per fault, the reconnect times of the gateway and of Kazoo, then the checker's
 * figures. Exits 1 when a target is missed.
 */
import { parseArgs } from 'node:util';
import { formatReport, missedTargets, runCampaign } from './campaign.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, settle: { type: 'string', default: '3000' } } });
const rounds = Number(values.rounds);
const started = Date.now();
console.log(`fault campaign: ${rounds} round(s) of kill-follower, kill-leader, stop-member, stop-gateway, restart-all`);
const report = await runCampaign({ rounds, settleMs: Number(values.settle), progress: (l) => console.log(l) });
console.log('---');
for (const line of formatReport(report).slice(report.faults.length)) console.log(line);
const missed = missedTargets(report);
console.log(`--- ${((Date.now() - started) / 1000).toFixed(0)} s; targets ${missed.length === 0 ? 'met' : `MISSED:\n${missed.join('\n')}`}`);
process.exit(missed.length === 0 ? 0 : 1);
