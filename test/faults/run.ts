/**
 * `npm run test:faults [-- --rounds N] [--faults stop-member,…]`: runs the fault campaign (test/faults/campaign.ts) and
 * prints, per fault, the reconnect times of the gateway and of Kazoo, then the checker's
 * figures. Exits 1 when a target is missed.
 */
import { parseArgs } from 'node:util';
import { FAULTS, formatReport, missedTargets, runCampaign, type Fault } from './campaign.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, settle: { type: 'string', default: '3000' }, faults: { type: 'string', default: FAULTS.join(',') } } });
const rounds = Number(values.rounds);
const faults = values.faults.split(',').filter(Boolean);
const unknown = faults.filter((f) => !(FAULTS as readonly string[]).includes(f));
if (unknown.length > 0 || faults.length === 0) {
  console.error(`--faults: a comma-separated list of ${FAULTS.join(', ')} (unknown: ${unknown.join(', ') || 'none given'})`);
  process.exit(2);
}
const started = Date.now();
console.log(`fault campaign: ${rounds} round(s) of ${faults.join(', ')}`);
const report = await runCampaign({ rounds, faults: faults as Fault[], settleMs: Number(values.settle), progress: (l) => console.log(l) });
console.log('---');
for (const line of formatReport(report).slice(report.faults.length)) console.log(line);
const missed = missedTargets(report);
console.log(`--- ${((Date.now() - started) / 1000).toFixed(0)} s; targets ${missed.length === 0 ? 'met' : `MISSED:\n${missed.join('\n')}`}`);
process.exit(missed.length === 0 ? 0 : 1);
