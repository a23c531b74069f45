import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import { AccountsService } from './accounts/service.js';
import { AccountsStore } from './accounts/store.js';
import { adminRoutes } from './admin/routes.js';
import { billingRoutes } from './billing/routes.js';
import { BillingStore } from './billing/store.js';
import { catalogRoutes } from './catalog/routes.js';
import { Catalog, type EnabledProvider } from './catalog/service.js';
import { CatalogStore } from './catalog/store.js';
import type { Config } from './config/config.js';
import { type Db, openDatabase } from './db/database.js';
import { migrateToLatest } from './db/migrations.js';
import { healthRoutes, VERSION } from './health/routes.js';
import { installAuth } from './http/auth.js';
import { installErrorHandling } from './http/errors.js';
import './http/types.js';
import { installValidation } from './http/validation.js';
import { chatRoutes } from './inference/chat/routes.js';
import { Pipeline } from './inference/pipeline.js';
import { newRequestId } from './lib/ids.js';
import { PROVIDERS } from './providers/definitions.js';
import { Upstreams } from './providers/upstream.js';
import { Router } from './routing/router.js';

export interface Gateway {
  app: FastifyInstance;
  config: Config;
  db: Db;
  accounts: AccountsService;
  billing: BillingStore;
  catalog: Catalog;
  pipeline: Pipeline;
  upstreams: Upstreams;
  /** Resolves when the first catalog sync has finished (immediately useful in tests). */
  catalogReady: Promise<void>;
  close(): Promise<void>;
}

export interface BuildOptions {
  /** Pino logger options, or false for none. */
  logger?: boolean | Record<string, unknown>;
}

const REDACT = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'api_key',
  '*.api_key',
  'apiKey',
  '*.apiKey',
];

/** Composition root: builds stores, services and routes from one Config. No globals. */
export async function buildGateway(config: Config, options: BuildOptions = {}): Promise<Gateway> {
  const logger =
    options.logger === false
      ? false
      : {
          level: config.logLevel,
          redact: { paths: REDACT, censor: '[redacted]' },
          ...(typeof options.logger === 'object' ? options.logger : {}),
        };
  const app = Fastify({
    logger,
    bodyLimit: config.bodyLimitBytes,
    // Per-request log lines cost more than the gateway's own work at high rates; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.trustedProxies.length ? config.trustedProxies : false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._:-]{8,128}$/.test(given) ? given : newRequestId();
    },
    ajv: { customOptions: { coerceTypes: false } },
  });

  const db = openDatabase(config.database);
  await migrateToLatest(db.db, db.dialect);
  const billing = new BillingStore(db.db, db.dialect);
  const accountsStore = new AccountsStore(db.db);
  const accounts = new AccountsService(
    db.db,
    accountsStore,
    billing,
    config.gatewaySecret,
    config.adminApiKey,
    config.keyCacheTtlMs,
  );
  const upstreams = new Upstreams(config.timeouts);

  const enabled = new Map<string, EnabledProvider>();
  for (const [name, settings] of Object.entries(config.providers)) {
    const def = PROVIDERS[name];
    if (!def) continue;
    enabled.set(name, {
      def,
      baseUrl: (settings.baseUrl ?? def.defaultBaseUrl).replace(/\/+$/, ''),
      headers: def.headers(settings, { appName: config.appName, appUrl: config.appUrl }),
    });
  }
  const catalog = new Catalog(new CatalogStore(db.db), upstreams, enabled, config, app.log);
  await catalog.load();
  const catalogReady = catalog.entries().length === 0 ? catalog.syncAll() : Promise.resolve();
  if (catalog.entries().length > 0)
    catalog.syncAll().catch((e) => app.log.warn({ err: e }, 'catalog sync failed'));
  await catalogReady;
  catalog.startPeriodicSync();

  const router = new Router(catalog, config.providerOrder);
  const pipeline = new Pipeline({
    billing,
    router,
    upstreams,
    log: app.log,
    guards: [],
    holdTtlMs: config.holdTtlMs,
    totalTimeoutMs: config.timeouts.totalMs,
    minAffordableTokens: config.file.minAffordableTokens,
  });

  installValidation(app);
  installErrorHandling(app);
  installAuth(app, accounts, []);
  await app.register(swagger, {
    openapi: {
      info: { title: 'Gatewayz', version: VERSION, description: 'OpenAI-compatible AI gateway' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true }, config: { auth: 'public' } }, async () => app.swagger());

  const startedAt = Date.now();
  healthRoutes(app, { db, catalog, startedAt });
  catalogRoutes(app, catalog, config.providerOrder);
  chatRoutes(app, pipeline);
  billingRoutes(app, billing);
  adminRoutes(app, accounts, billing);

  const sweeper = setInterval(() => {
    billing.releaseExpired(Date.now()).catch((e) => app.log.warn({ err: e }, 'hold sweeper failed'));
  }, 30_000);
  sweeper.unref();

  await app.ready();
  return {
    app,
    config,
    db,
    accounts,
    billing,
    catalog,
    pipeline,
    upstreams,
    catalogReady,
    async close() {
      clearInterval(sweeper);
      catalog.stop();
      await app.close();
      await upstreams.close();
      await db.close();
    },
  };
}
