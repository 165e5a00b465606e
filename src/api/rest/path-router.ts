/** Routers whose handlers get the znode path from the URL remainder, per method. */
import { Router, type Request, type Response } from 'express';
import { invalidArgument } from '../../core/index.js';
import { znodePathFromUrl } from './znode-path.js';

type Handler = (req: Request, res: Response, path: string) => Promise<void>;

/** A router whose handlers get the znode path from the URL remainder, per method. */
export function pathRouter(handlers: Partial<Record<string, Handler>>): Router {
  const router = Router();
  router.use(async (req, res) => {
    const handler = handlers[req.method];
    if (!handler) {
      res.set('Allow', Object.keys(handlers).join(', '));
      throw invalidArgument('method', `${req.method} is not allowed here`);
    }
    await handler(req, res, znodePathFromUrl(req.path));
  });
  return router;
}
