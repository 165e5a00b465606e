/** Prometheus metrics (prom-client): HTTP requests and ZooKeeper session state per tenant. */
import type { Request, RequestHandler, Response, NextFunction } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Gateway } from '../core/index.js';

/** One registry per process; gateways created in tests share it. */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

const httpDuration = new Histogram({
  name: 'zkgate_http_request_duration_seconds',
  help: 'REST request latency by route family, method and status',
  labelNames: ['route', 'method', 'status'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30],
  registers: [registry],
});

const sessionUp = new Gauge({
  name: 'zkgate_zk_session_connected',
  help: '1 when the tenant\'s ZooKeeper session is connected',
  labelNames: ['tenant'] as const,
  registers: [registry],
});

/** Errors answered, by stable code and transport. */
export const errorsTotal = new Counter({
  name: 'zkgate_errors_total',
  help: 'Errors answered, by code and transport',
  labelNames: ['code', 'transport'] as const,
  registers: [registry],
});

function routeFamily(url: string): string {
  const m = /^\/(v1\/[a-z]+|[a-z]+)/.exec(url);
  return m ? (m[1] as string) : 'other';
}

export function httpMetrics(): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const end = httpDuration.startTimer({ route: routeFamily(req.path), method: req.method });
    res.on('finish', () => end({ status: String(res.statusCode) }));
    next();
  };
}

export function metricsHandler(gw: Gateway): RequestHandler {
  return async (_req, res) => {
    for (const t of gw.health().tenants) sessionUp.set({ tenant: t.name }, t.ready ? 1 : 0);
    res.type(registry.contentType).send(await registry.metrics());
  };
}
