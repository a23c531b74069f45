import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Gateway } from '../app.js';

const draining = new WeakSet<FastifyInstance>();

/**
 * While draining, every response carries `Connection: close`, so keep-alive clients and load
 * balancers open their next request on another instance instead of this one.
 */
export function installDraining(app: FastifyInstance): void {
  app.addHook('onRequest', (_request, reply, done) => {
    if (draining.has(app)) reply.raw.setHeader('connection', 'close');
    done();
  });
}

/**
 * SIGTERM: hand scheduled jobs to another instance, stop accepting connections, let in-flight
 * requests and streams finish (up to SHUTDOWN_GRACE_MS; then their connections are closed and what
 * they delivered is charged), wait until every run has settled or released its hold, flush the
 * queues, close the stores.
 */
export async function gracefulShutdown(gw: Gateway, log: FastifyBaseLogger): Promise<void> {
  const graceMs = gw.config.fleet.shutdownGraceMs;
  draining.add(gw.app);
  await gw.fleet.jobs.stop().catch((err) => log.warn({ err }, 'stopping scheduled jobs failed'));
  // Node's server.close() also destroys connections accepted a moment ago whose request has not
  // arrived yet (they look idle): the client sees a reset for a request it already sent. Stop
  // listening first, and close idle keep-alive connections only after such requests have arrived.
  const server = gw.app.server;
  const closeIdle = server.closeIdleConnections.bind(server);
  server.closeIdleConnections = () => {};
  const idleSweep = setInterval(closeIdle, 250);
  const closing = gw.app.close();
  const deadline = setTimeout(() => {
    log.warn({ inFlight: gw.pipeline.inFlight(), graceMs }, 'shutdown grace over: closing open connections');
    gw.app.server.closeAllConnections();
  }, graceMs);
  try {
    await closing;
  } finally {
    clearTimeout(deadline);
    clearInterval(idleSweep);
  }
  await gw.close();
}
