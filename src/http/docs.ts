import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';

export interface DocsInfo {
  title: string;
  version: string;
  description: string;
}

/** Response headers the docs instance sets that belong to its own connection, not to the reply. */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'content-length']);

/**
 * API documentation: the OpenAPI document at `/openapi.json` and Swagger UI under `/docs`.
 *
 * Both are built on their first request, not at start: @fastify/swagger, @fastify/swagger-ui and
 * their dependencies (a YAML library, a static file server) and the document itself take memory a
 * gateway serving traffic never needs. This records every route as it is added (call it before the
 * routes to document); the first docs request builds a separate Fastify instance holding the two
 * plugins and those routes (method, URL and schema; handlers and validators are not needed), and
 * `/docs` requests are answered by it (`inject`). That first request takes a few hundred ms longer.
 */
export function installDocs(app: FastifyInstance, info: DocsInfo): void {
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => {
    // Fastify adds a HEAD route for each GET; the document lists the GET (as @fastify/swagger does).
    if (route.method !== 'HEAD') routes.push(route);
  });
  let built: Promise<FastifyInstance> | null = null;
  const docs = () => {
    built ??= buildDocs(routes, info).catch((err) => {
      built = null;
      throw err;
    });
    return built;
  };

  const route = { schema: { hide: true }, config: { auth: 'public' as const } };
  app.get('/openapi.json', route, async () => (await docs()).swagger());
  const forward = async (request: FastifyRequest, reply: FastifyReply) => {
    const res = await (await docs()).inject({
      method: 'GET',
      url: request.url,
      headers: request.headers,
    });
    // Unknown paths get the gateway's own 404 (its error shape and request id).
    if (res.statusCode === 404) return reply.callNotFound();
    for (const [name, value] of Object.entries(res.headers))
      if (value !== undefined && !HOP_HEADERS.has(name)) reply.header(name, value);
    reply.code(res.statusCode);
    return res.rawPayload.length ? reply.send(res.rawPayload) : reply.send();
  };
  app.get('/docs', route, forward);
  app.get('/docs/*', route, forward);
}

async function buildDocs(routes: RouteOptions[], info: DocsInfo): Promise<FastifyInstance> {
  const [{ default: Fastify }, { default: swagger }, { default: swaggerUi }] = await Promise.all([
    import('fastify'),
    import('@fastify/swagger'),
    import('@fastify/swagger-ui'),
  ]);
  const docs = Fastify({ logger: false });
  // Only the schemas' shapes matter here: nothing is validated or serialized against them.
  docs.setValidatorCompiler(() => () => true);
  docs.setSerializerCompiler(() => (data) => JSON.stringify(data));
  await docs.register(swagger, {
    openapi: {
      info,
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await docs.register(swaggerUi, { routePrefix: '/docs' });
  const documented = routes.filter((r) => r.url !== '/openapi.json' && !/^\/docs(\/|$)/.test(r.url));
  for (const r of documented)
    docs.route({ method: r.method, url: r.url, schema: r.schema, handler: async () => null });
  await docs.ready();
  return docs;
}
