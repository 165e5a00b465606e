/**
 * REST job routes (/v1/jobs): job settings and state, run-once triggers and their records,
 * sharded-job membership, sync and the assignment (long-poll with `?after=&wait=`).
 */
import { Router } from 'express';
import { z } from 'zod';
import { RUN_OUTCOMES, RUN_STATES, invalidArgument, type JobState, type RunOutcome, type RunState } from '../../core/index.js';
import { parseWith } from './nodes.js';
import { intParam, jsonBody, requiredParam, scopeOf, stringParam } from './params.js';
import { methodNotAllowed } from './path-router.js';
import { clientGone } from './request-signal.js';

const putBody = z.object({ shardCount: z.number().int().optional(), retentionMs: z.number().int().optional(), version: z.number().int().optional() }).strict();
const claimBody = z.object({ trigger: z.string(), leaseId: z.string().min(1), claimer: z.string().optional(), shard: z.number().int().optional() }).strict();
const completeBody = z
  .object({ leaseId: z.string().min(1), outcome: z.enum(RUN_OUTCOMES as [RunOutcome, ...RunOutcome[]]), message: z.string().optional() })
  .strict();
const joinBody = z.object({ memberId: z.string(), leaseId: z.string().min(1) }).strict();
const syncBody = z.object({ leaseId: z.string().min(1) }).strict();
const runState = z.enum(RUN_STATES as [RunState, ...RunState[]]).optional();

const STATE_OPS: Readonly<Record<string, JobState>> = { pause: 'paused', resume: 'active', disable: 'disabled' };

export function jobsRouter(): Router {
  const r = Router();
  r.get('/', async (_req, res) => {
    res.json({ jobs: await scopeOf(res).jobs.list() });
  });
  r.put('/:job', async (req, res) => {
    const b = parseWith(putBody, jsonBody(req));
    const { job, created } = await scopeOf(res).jobs.put(req.params.job, b);
    res.status(created ? 201 : 200).json(job);
  });
  r.get('/:job', async (req, res) => {
    res.json(await scopeOf(res).jobs.get(req.params.job));
  });
  r.delete('/:job', async (req, res) => {
    res.json(await scopeOf(res).jobs.delete(req.params.job, { version: intParam(req, 'version') }));
  });
  for (const [op, state] of Object.entries(STATE_OPS)) {
    r.post(`/:job/${op}`, async (req, res) => {
      res.json(await scopeOf(res).jobs.setState(req.params.job, state));
    });
  }
  r.post('/:job/runs', async (req, res) => {
    const b = parseWith(claimBody, jsonBody(req));
    const run = await scopeOf(res).jobs.claimRun(req.params.job, b.trigger, b.leaseId, { shard: b.shard, claimer: b.claimer, signal: clientGone(res) });
    res.status(201).location(`/v1/jobs/${req.params.job}/runs/${encodeURIComponent(run.runId)}`).json(run);
  });
  r.get('/:job/runs', async (req, res) => {
    const state = parseWith(runState, stringParam(req, 'state'));
    res.json({ job: req.params.job, ...(await scopeOf(res).jobs.listRuns(req.params.job, { limit: intParam(req, 'limit'), state })) });
  });
  r.get('/:job/runs/:runId', async (req, res) => {
    res.json(await scopeOf(res).jobs.getRun(req.params.job, req.params.runId));
  });
  r.post('/:job/runs/:runId/complete', async (req, res) => {
    const b = parseWith(completeBody, jsonBody(req));
    res.json(await scopeOf(res).jobs.completeRun(req.params.job, req.params.runId, b.leaseId, b.outcome, b.message));
  });
  r.post('/:job/members', async (req, res) => {
    const b = parseWith(joinBody, jsonBody(req));
    res.json(await scopeOf(res).jobs.join(req.params.job, b.memberId, b.leaseId));
  });
  r.delete('/:job/members/:memberId', async (req, res) => {
    res.json(await scopeOf(res).jobs.leave(req.params.job, req.params.memberId, requiredParam(req, 'leaseId')));
  });
  r.post('/:job/members/:memberId/sync', async (req, res) => {
    const b = parseWith(syncBody, jsonBody(req));
    res.json(await scopeOf(res).jobs.sync(req.params.job, req.params.memberId, b.leaseId));
  });
  r.get('/:job/assignment', async (req, res) => {
    const after = intParam(req, 'after');
    const waitMs = intParam(req, 'wait');
    if (waitMs !== undefined && waitMs < 0) throw invalidArgument('wait', 'must be a number of ms, 0 or more');
    if (waitMs !== undefined && after === undefined) throw invalidArgument('after', 'is required with wait (the generation last seen)');
    const wait = after === undefined ? undefined : { after, waitMs: waitMs ?? 0, signal: clientGone(res) };
    const { assignment, changed } = await scopeOf(res).jobs.assignment(req.params.job, wait);
    if (!changed) res.set('X-Zkgate-Unchanged', 'true');
    res.json(assignment);
  });
  r.all('/', methodNotAllowed(['GET']));
  r.all('/:job', methodNotAllowed(['GET', 'PUT', 'DELETE']));
  for (const op of Object.keys(STATE_OPS)) r.all(`/:job/${op}`, methodNotAllowed(['POST']));
  r.all('/:job/runs', methodNotAllowed(['GET', 'POST']));
  r.all('/:job/runs/:runId', methodNotAllowed(['GET']));
  r.all('/:job/runs/:runId/complete', methodNotAllowed(['POST']));
  r.all('/:job/members', methodNotAllowed(['POST']));
  r.all('/:job/members/:memberId', methodNotAllowed(['DELETE']));
  r.all('/:job/members/:memberId/sync', methodNotAllowed(['POST']));
  r.all('/:job/assignment', methodNotAllowed(['GET']));
  return r;
}
