/** Routers whose handlers get the znode path from the URL remainder, per method. */
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { ZkgateError } from '../../core/index.js';
import { znodePathFromUrl } from './znode-path.js';

type Handler = (req: Request, res: Response, path: string) => Promise<void>;

/** Answers 405 METHOD_NOT_ALLOWED with `Allow` (RFC 9110): the URL exists, the method does not. */
export function methodNotAllowed(allowed: readonly string[]): RequestHandler {
  const allow = allowed.join(', ');
  return (req, res) => {
    res.set('Allow', allow);
    throw new ZkgateError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on this URL; it allows ${allow}`, { method: req.method, allow });
  };
}

/** A router whose handlers get the znode path from the URL remainder, per method. */
export function pathRouter(handlers: Partial<Record<string, Handler>>): Router {
  const router = Router();
  const refuse = methodNotAllowed(Object.keys(handlers));
  router.use(async (req, res, next) => {
    const handler = handlers[req.method];
    if (!handler) return refuse(req, res, next);
    await handler(req, res, znodePathFromUrl(req.path));
  });
  return router;
}
