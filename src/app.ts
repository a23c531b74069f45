import Fastify, { type FastifyInstance, LogController } from 'fastify';
import { Access } from './accounts/access.js';
import { privyClientConfig } from './accounts/config.js';
import { keyRestrictionsGuard } from './accounts/guard.js';
import { AccountsService } from './accounts/service.js';
import { AccountsStore } from './accounts/store.js';
import { adminRoutes } from './admin/routes.js';
import { installAdminAudit } from './audit/hook.js';
import type { AuditLog } from './audit/log.js';
import { DEFAULT_LEASES } from './billing/hold-leases.js';
import { PostgresBillingFastPath } from './billing/postgres-fast.js';
import { billingRoutes } from './billing/routes.js';
import { sqliteFastPath } from './billing/sqlite-fast.js';
import { BillingStore } from './billing/store.js';
import { catalogRoutes } from './catalog/routes.js';
import { Catalog, type EnabledProvider } from './catalog/service.js';
import { CatalogStore } from './catalog/store.js';
import { type Commerce, installCommerce } from './commerce/index.js';
import type { Config } from './config/config.js';
import { type Db, openDatabase } from './db/database.js';
import { migrateToLatest } from './db/migrations.js';
import { CHANNELS, createFleet, type Fleet } from './fleet/fleet.js';
import { installDraining } from './fleet/shutdown.js';
import { healthRoutes, VERSION } from './health/routes.js';
import { installAuth } from './http/auth.js';
import { installDocs } from './http/docs.js';
import { installErrorHandling } from './http/errors.js';
import './http/types.js';
import { historyRoutes } from './history/routes.js';
import { HistoryService } from './history/service.js';
import { HistoryStore } from './history/store.js';
import { loggerOptions } from './http/logger.js';
import { installValidation } from './http/validation.js';
import { chatRoutes } from './inference/chat/routes.js';
import { embeddingsRoutes } from './inference/embeddings/routes.js';
import { ImagePrices } from './inference/images/price.js';
import { imagesRoutes } from './inference/images/routes.js';
import { messagesRoutes } from './inference/messages/routes.js';
import { Pipeline } from './inference/pipeline.js';
import { responsesRoutes } from './inference/responses/routes.js';
import { ResponsesStore, storedResponseInsert } from './inference/responses/store.js';
import { newRequestId } from './lib/ids.js';
import { createLimits, type Limits } from './limits/index.js';
import { limitsRoutes } from './limits/routes.js';
import { holdsInFlight } from './metrics/holds.js';
import { Metrics } from './metrics/metrics.js';
import { installMetrics } from './metrics/routes.js';
import { OtlpTracer } from './metrics/tracing.js';
import { PROVIDERS } from './providers/definitions.js';
import { Upstreams } from './providers/upstream.js';
import { rankingsRoutes } from './rankings/routes.js';
import { RankingsService } from './rankings/service.js';
import { RankingsStore } from './rankings/store.js';
import type { Clock } from './routing/breaker.js';
import { buildRouting, type Routing } from './routing/index.js';
import { Router } from './routing/router.js';
import { dashboardRoutes } from './web/routes.js';

export interface Gateway {
  app: FastifyInstance;
  config: Config;
  db: Db;
  accounts: AccountsService;
  billing: BillingStore;
  catalog: Catalog;
  pipeline: Pipeline;
  /** Rate limits and plan quotas (src/limits); `limits.service.setPlanSource(fn)` plugs plans in. */
  limits: Limits;
  /** Plans, trials, payments, coupons, referrals, e-mail (src/commerce, src/notify). */
  commerce: Commerce;
  upstreams: Upstreams;
  /** Audit log writer (batched; flushed on close). */
  audit: AuditLog;
  /** Roles, key management, login, throttle, profile (src/accounts/access.ts). */
  access: Access;
  /** Breakers, balancer, retries, response cache (src/routing). */
  routing: Routing;
  /** Bus, leases and scheduled jobs shared with the other instances (src/fleet). */
  fleet: Fleet;
  metrics: Metrics;
  tracer: OtlpTracer | null;
  /** Resolves when the first catalog sync has finished (immediately useful in tests). */
  catalogReady: Promise<void>;
  close(): Promise<void>;
}

export interface BuildOptions {
  /** Pino logger options, or false for none. */
  logger?: boolean | Record<string, unknown>;
  /** Time source of breakers, balancer and cache (tests move it instead of sleeping). */
  clock?: Clock;
}

/** Composition root: builds stores, services and routes from one Config. No globals. */
export async function buildGateway(config: Config, options: BuildOptions = {}): Promise<Gateway> {
  const logger =
    options.logger === false
      ? false
      : loggerOptions(config.logLevel, typeof options.logger === 'object' ? options.logger : {});
  const app = Fastify({
    logger,
    bodyLimit: config.bodyLimitBytes,
    // During a graceful shutdown a request already accepted is served, not refused with 503 (src/fleet/shutdown.ts).
    return503OnClosing: false,
    // Per-request log lines cost more than the gateway's own work at high rates; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.trustedProxies.length ? config.trustedProxies : false,
    // Always our own id: usage records and holds are keyed by it. A caller's id is a correlation id
    // (src/inference/call.ts clientRequestIdHeader), echoed back as x-client-request-id.
    genReqId: () => newRequestId(),
    ajv: { customOptions: { coerceTypes: false } },
  });

  const db = openDatabase(config.database);
  await migrateToLatest(db.db, db.dialect);
  const billing = new BillingStore(
    db.db,
    db.dialect,
    sqliteFastPath(db),
    db.pgPool ? new PostgresBillingFastPath(db.pgPool) : null,
    config.holdLeaseMinInFlight > 0 ? { ...DEFAULT_LEASES, minInFlight: config.holdLeaseMinInFlight } : null,
    (err) => app.log.warn({ err }, 'giving back a hold lease failed (its hold expires)'),
  );
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
  const fleet = await createFleet(config.fleet, config.redisUrl, db.db, app.log);
  // A key revoked or changed on any instance is forgotten by every instance's cache within a second.
  accounts.onKeyChanged((c) => {
    if ('keyId' in c) void fleet.bus.publish(CHANNELS.key, c.keyId);
    else void fleet.bus.publish(CHANNELS.user, c.userId);
  });
  fleet.bus.subscribe(CHANNELS.key, (id) => accounts.invalidateKey(id, true));
  fleet.bus.subscribe(CHANNELS.user, (id) => accounts.invalidateUser(id, true));
  const metrics = new Metrics({ instance: config.fleet.instanceId });
  metrics.setHoldsSource(() => holdsInFlight(db.db));
  const tracer = config.fleet.otlpEndpoint
    ? new OtlpTracer({
        endpoint: config.fleet.otlpEndpoint,
        headers: config.fleet.otlpHeaders,
        serviceName: config.fleet.serviceName,
        instanceId: config.fleet.instanceId,
        version: VERSION,
        onError: (e) => app.log.warn({ err: e }, 'trace export failed'),
      })
    : null;

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
  const storedCatalog = catalog.entries().length > 0;
  const catalogReady = storedCatalog ? Promise.resolve() : catalog.syncAll();
  // With a periodic sync, the refresh of a stored catalog is the sync job's (one instance runs it).
  if (storedCatalog && config.catalogSyncIntervalMs <= 0)
    catalog.syncAll().catch((e) => app.log.warn({ err: e }, 'catalog sync failed'));
  await catalogReady;
  // One instance of the fleet re-reads the provider catalogs; the others reload what it stored.
  if (config.catalogSyncIntervalMs > 0) {
    fleet.bus.subscribe(CHANNELS.catalog, () => {
      catalog.load().catch((e) => app.log.warn({ err: e }, 'catalog reload failed'));
    });
    fleet.jobs.every(
      'catalog-sync',
      config.catalogSyncIntervalMs,
      async () => {
        await catalog.syncAll();
        await fleet.bus.publish(CHANNELS.catalog, String(Date.now()));
      },
      { follower: () => catalog.load(), runNow: storedCatalog },
    );
  }

  const routing = buildRouting({
    settings: config.routing,
    upstreams,
    log: app.log,
    redisUrl: config.redisUrl,
    clock: options.clock,
  });
  const router = new Router(catalog, config.providerOrder, {
    fallbacks: config.routing.fallbacks,
    balancer: routing.balancer,
  });
  const pipeline = new Pipeline({
    attempts: routing.attempts,
    responseCache: routing.cache,
    cacheSettings: routing.cacheSettings,
    observer: metrics,
    tracer: tracer ?? undefined,
    billing,
    router,
    upstreams,
    log: app.log,
    guards: [],
    holdTtlMs: config.holdTtlMs,
    totalTimeoutMs: config.timeouts.totalMs,
    minAffordableTokens: config.file.minAffordableTokens,
  });
  const limits = await createLimits({
    config: config.limits,
    redisUrl: config.redisUrl,
    db: db.db,
    log: app.log,
    leaseTtlMs: config.holdTtlMs,
  });
  const providerGate = limits.gate;
  if (providerGate)
    pipeline.setUpstreamGate((t) => providerGate.wait(t.provider.def.name, config.limits.providerWaitMs));

  // First onRequest hook, so refused requests (401, 429 …) are counted too.
  installMetrics(app, metrics, config.fleet.metricsToken);
  installDraining(app);
  installValidation(app);
  installErrorHandling(app);
  const access = await Access.create(db.db, accounts, billing, app.log, config.accounts);
  installAuth(app, accounts, [], { roles: access.roles, throttle: access.throttle });
  installAdminAudit(app, access.audit);
  pipeline.addGuard(keyRestrictionsGuard(accounts));
  installDocs(app, { title: 'Gatewayz', version: VERSION, description: 'OpenAI-compatible AI gateway' });

  const startedAt = Date.now();
  healthRoutes(app, { db, catalog, startedAt, limits: limits.service, breakers: routing.breakers });
  catalogRoutes(app, catalog, config.providerOrder, routing.breakers, async () => {
    await catalog.syncAll();
    await fleet.bus.publish(CHANNELS.catalog, String(Date.now()));
  });
  const history = new HistoryService(
    new HistoryStore(db.db),
    (model) => {
      const es = catalog.find(model);
      const min = (xs: Array<number | null>) => {
        const known = xs.filter((x): x is number => x !== null);
        return known.length ? Math.min(...known) : null;
      };
      return {
        contextLength: min(es.map((e) => e.contextLength)),
        maxOutputTokens: min(es.map((e) => e.maxOutputTokens)),
      };
    },
    app.log,
  );
  access.profile.onAccountDeleted((userId) => history.deleteAllOf(userId));
  chatRoutes(app, pipeline, history);
  historyRoutes(app, history);
  responsesRoutes(
    app,
    pipeline,
    new ResponsesStore(db.db, storedResponseInsert(db, billing.groupCommit)),
    history,
  );
  messagesRoutes(app, pipeline);
  embeddingsRoutes(app, pipeline);
  imagesRoutes(app, pipeline, new ImagePrices(config.file));
  rankingsRoutes(app, new RankingsService(new RankingsStore(db.db, db.dialect), catalog));
  billingRoutes(app, billing, (userId) => commerce.balanceExtras(userId));
  adminRoutes(app, accounts, billing, access.audit);
  dashboardRoutes(app, { privyApiUrl: privyClientConfig(config.accounts)?.api_url ?? null });
  limitsRoutes(app, { limits: limits.service, store: limits.store, accounts, audit: access.audit });
  const commerce = installCommerce(app, {
    db,
    billing,
    config: config.commerce,
    appName: config.appName,
    audit: access.audit,
    jobs: fleet.jobs,
  });
  // New users get the welcome mail (and the trial when TRIAL_AUTO_START is on); new keys the security mail.
  // A failure is logged and never fails the request that created the user or key.
  accounts.onUserCreated((userId) =>
    commerce
      .userCreated(userId)
      .catch((err) => app.log.warn({ err, userId }, 'welcome mail or trial failed')),
  );
  accounts.onKeyCreated((userId, key) =>
    commerce.keyCreated(userId, key).catch((err) => app.log.warn({ err, userId }, 'new-key mail failed')),
  );
  limits.service.setPlanSource(commerce.planLimits);
  commerce.plans.onChange(() => void limits.service.invalidate().catch(() => {}));
  pipeline.addGuard(commerce.modelGuard);
  // Rate limits run after the key's own restrictions (a refused request takes no rate-limit slot).
  pipeline.addGuard(limits.service.guard());
  pipeline.addGuard(commerce.usageGuard);
  access.routes(app);

  // Holds of a process that died are released by one instance of the fleet.
  fleet.jobs.every('hold-sweeper', config.fleet.holdSweepIntervalMs, async () => {
    const n = await billing.releaseExpired(Date.now());
    if (n > 0) app.log.info({ released: n }, 'hold sweeper released expired holds');
  });
  metrics.addQueue('trace_export', () => tracer?.pending() ?? 0);
  metrics.addQueue('audit', () => access.audit.pending());
  metrics.setBreakerSource(async () => {
    const state = { closed: 0, half_open: 1, open: 2 } as const;
    const out = new Map<string, number>([...catalog.providers.keys()].map((p) => [p, 0]));
    for (const v of await routing.breakers.view([...out.keys()])) out.set(v.key, state[v.state]);
    return out;
  });

  await app.ready();
  return {
    app,
    config,
    db,
    accounts,
    billing,
    catalog,
    pipeline,
    limits,
    commerce,
    upstreams,
    audit: access.audit,
    access,
    routing,
    fleet,
    metrics,
    tracer,
    catalogReady,
    async close() {
      await fleet.jobs.stop();
      await app.close();
      // Streams cut by a shutdown deadline still settle: wait for every run to finish.
      await pipeline.drain(10_000);
      await billing.close();
      await limits.close();
      await commerce.close();
      await access.close();
      await fleet.close();
      await tracer?.close();
      await upstreams.close();
      await routing.close();
      await db.close();
    },
  };
}
