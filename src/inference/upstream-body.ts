/**
 * The body a provider receives: the client's fields minus the gateway's own (`skip`), then
 * `overrides` (the provider's model id, …), each in its place when the client sent it. Copied field
 * by field: deleting a field from a spread copy put it in V8's dictionary mode (whenever the client
 * sent one of the gateway's fields), and JSON.stringify takes its slow path on such objects.
 */
export function upstreamBody(
  body: Record<string, any>,
  skip: ReadonlySet<string>,
  overrides: Record<string, unknown>,
): Record<string, any> {
  const out: Record<string, any> = {};
  for (const k in body) if (!skip.has(k)) out[k] = body[k];
  for (const k in overrides) out[k] = overrides[k];
  return out;
}
