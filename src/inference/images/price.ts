import type { Price } from '../../billing/cost.js';
import type { FileConfig } from '../../config/file.js';
import { GatewayError } from '../../lib/errors.js';
import { usdStringToMicros } from '../../lib/money.js';
import type { Target } from '../../routing/router.js';

/** The size an image is priced at when the request names none (OpenAI's default for DALL·E 3 and gpt-image). */
export const DEFAULT_PRICED_SIZE = '1024x1024';

/**
 * Per-image prices: the config file's `image_sizes` for the model and size, else the catalog's
 * per-image price (`Price.image`). A model with neither is refused — never a default price.
 */
export class ImagePrices {
  private readonly bySize = new Map<string, Map<string, number>>();

  constructor(file: FileConfig) {
    for (const [provider, models] of Object.entries(file.prices ?? {})) {
      for (const [id, spec] of Object.entries(models)) {
        if (spec.image_sizes === undefined) continue;
        if (typeof spec.image_sizes !== 'object' || spec.image_sizes === null)
          throw new Error(`prices.${provider}.${id}.image_sizes must be an object of size → USD per image`);
        const m = new Map<string, number>();
        for (const [size, usd] of Object.entries(spec.image_sizes)) {
          const n = usdStringToMicros(usd);
          if (n === null)
            throw new Error(`prices.${provider}.${id}.image_sizes.${size} must be a non-negative number`);
          m.set(size, n);
        }
        this.bySize.set(`${provider}\u0000${id}`, m);
      }
    }
  }

  /** Micro-dollars per image for `size` on this target, or null when the target has no image price. */
  perImage(t: Target, size: string | undefined): number | null {
    const sizes =
      this.bySize.get(`${t.provider.def.name}\u0000${t.entry.upstreamId}`) ??
      this.bySize.get(`${t.provider.def.name}\u0000${t.entry.id}`);
    const bySize = sizes?.get(size ?? DEFAULT_PRICED_SIZE);
    if (bySize !== undefined) return bySize;
    return t.entry.price?.image ?? null;
  }

  /** The Price the pipeline holds and settles with: images only, no token charges. */
  priceOf(size: string | undefined): (t: Target) => Price {
    return (t) => {
      const image = this.perImage(t, size);
      if (image === null) {
        throw new GatewayError(
          400,
          `The model '${t.entry.id}' has no per-image price${size ? ` for size ${size}` : ''} on this gateway; the operator must configure one`,
          { code: 'model_not_priced', param: size ? 'size' : 'model' },
        );
      }
      return {
        prompt: 0,
        completion: 0,
        cacheRead: null,
        cacheWrite: null,
        reasoning: null,
        request: null,
        image,
      };
    };
  }
}
