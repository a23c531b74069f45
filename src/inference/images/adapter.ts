import { emptyUsage } from '../../billing/cost.js';
import type { Adapter } from '../pipeline.js';
import { respondJson, spliceField } from '../respond-json.js';
import { upstreamBody } from '../upstream-body.js';

/** Fields that steer the gateway and are not the provider's business. */
const GATEWAY_FIELDS = new Set(['provider', 'models']);

export type ImagesShape = 'openai' | 'seed';

/**
 * OpenAI image generation over any OpenAI-compatible image endpoint. Billed per image actually
 * returned (never more than asked for). `seed` renders the earlier gateway's
 * `{success, data, gateway_usage}` shape for POST /images/generate.
 */
export function imagesAdapter(body: Record<string, any>, n: number, shape: ImagesShape): Adapter {
  const images = (b: any): any[] => (Array.isArray(b?.data) ? b.data.slice(0, n) : []);
  return {
    upstream(target) {
      const out = upstreamBody(body, GATEWAY_FIELDS, { model: target.entry.upstreamId });
      return { path: '/images/generations', body: JSON.stringify(out) };
    },
    respond(res, io) {
      return respondJson(res, io, {
        usageOf: (b) => ({ ...emptyUsage(), units: images(b).length }),
        countUsage: async () => emptyUsage(),
        render: (b, text, gu) => {
          const data = images(b);
          const usage = { ...gu, images: data.length };
          if (shape === 'seed') {
            return JSON.stringify({
              success: true,
              created: b?.created ?? Math.floor(Date.now() / 1000),
              model: io.target.entry.id,
              data: data.map((d) => ({
                ...(typeof d?.url === 'string' ? { url: d.url } : {}),
                ...(typeof d?.b64_json === 'string' ? { b64_json: d.b64_json } : {}),
                revised_prompt: d?.revised_prompt ?? null,
              })),
              gateway_usage: usage,
            });
          }
          if (Array.isArray(b?.data) && b.data.length > n)
            return JSON.stringify({ ...b, data, gateway_usage: usage });
          return spliceField(text, 'gateway_usage', usage);
        },
      });
    },
  };
}
