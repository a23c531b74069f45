import { existsSync } from 'node:fs';
import type { loadConfig } from './config/config.js';
import { beginStartup, endStartup } from './lib/v8-memory.js';

/**
 * Process entry: config → app → listen → graceful shutdown. The gateway's modules are imported here,
 * not above: ES modules load their whole import graph before running any of it, and
 * `beginStartup()` must run first (src/lib/v8-memory.ts).
 */
async function main(): Promise<void> {
  beginStartup();
  const { buildGateway } = await import('./app.js');
  const { loadConfig } = await import('./config/config.js');
  const { ConfigError } = await import('./config/error.js');
  const { gracefulShutdown } = await import('./fleet/shutdown.js');
  if (existsSync('.env')) process.loadEnvFile('.env');
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`gatewayz: invalid configuration: ${err.message}`);
      process.exit(78);
    }
    throw err;
  }
  const gw = await buildGateway(config);
  const log = gw.app.log;
  if (config.database.kind === 'postgres' && !process.env.GATEWAY_SECRET) {
    log.warn('GATEWAY_SECRET is unset: every instance sharing this database must use the same secret');
  }
  if (Object.keys(config.providers).length === 0) {
    log.warn('no provider is configured: set OPENROUTER_API_KEY (or another <PROVIDER>_API_KEY)');
  }
  endStartup();
  await gw.app.listen({ port: config.port, host: config.host });
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal, graceMs: config.fleet.shutdownGraceMs }, 'shutting down');
    // Past the grace period plus time to settle and flush, give up (exit 1).
    const force = setTimeout(() => {
      log.error('shutdown did not finish in time');
      process.exit(1);
    }, config.fleet.shutdownGraceMs + 20_000);
    force.unref();
    try {
      await gracefulShutdown(gw, log);
      log.info('shut down cleanly');
      process.exit(0);
    } catch (err) {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  console.error('gatewayz: failed to start:', err);
  process.exit(1);
});
