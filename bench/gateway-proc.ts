/** The gateway under test, in its own process: `start` (a config object) → its ports; `mem`; `watchReads`; `close`. */
import { validateConfig } from '../src/config/schema.js';
import { silentLogger } from '../src/core/index.js';
import { startGateway, type RunningGateway } from '../src/main.js';
import { serve } from './ipc.js';

let gw: RunningGateway | undefined;

serve({
  start: async (config: unknown) => {
    gw = await startGateway(validateConfig(config), silentLogger);
    return { httpPort: gw.httpPort, grpcPort: gw.grpcPort };
  },
  /** ZooKeeper reads the watch hub made so far (all tenants): each change of a watched node costs one. */
  watchReads: () => (gw?.gateway.watches.stats() ?? []).reduce((n, t) => n + t.reads, 0),
  close: async () => {
    await gw?.close();
  },
});
