// Default catalogs and each provider's GET /v1/models shape; OpenRouter cost computation.
import type { MockKind, MockModel, MockPricing, MockUsage } from './types.js';

const CREATED = 1721260800; // 2024-07-18

export function defaultModels(kind: MockKind): MockModel[] {
  switch (kind) {
    case 'openrouter':
      return [
        {
          id: 'openai/gpt-4o-mini',
          context_length: 128000,
          max_completion_tokens: 16384,
          pricing: { prompt: '0.00000015', completion: '0.0000006', input_cache_read: '0.000000075' },
        },
        {
          id: 'anthropic/claude-3.5-sonnet',
          context_length: 200000,
          max_completion_tokens: 8192,
          pricing: { prompt: '0.000003', completion: '0.000015' },
        },
        {
          id: 'meta-llama/llama-3.1-8b-instruct:free',
          context_length: 131072,
          max_completion_tokens: 4096,
          pricing: { prompt: '0', completion: '0' },
        },
      ];
    case 'openai':
      return [{ id: 'gpt-4o-mini' }, { id: 'text-embedding-3-small' }, { id: 'dall-e-3' }];
    case 'featherless':
      return [{ id: 'Sao10K/L3-8B-Stheno-v3.2', context_length: 8192, max_completion_tokens: 4096 }];
    case 'chutes':
      return [
        {
          id: 'deepseek-ai/DeepSeek-V3-0324',
          context_length: 163840,
          max_completion_tokens: 163840,
          pricing: { prompt: '0.00000027216', completion: '0.00000027216' },
        },
      ];
    case 'portkey':
      return [{ id: '@openai-prod/gpt-4o-mini' }];
    case 'anthropic':
      return [{ id: 'claude-3-5-sonnet-20241022', context_length: 200000, max_completion_tokens: 8192 }];
  }
}

export function findModel(models: MockModel[], id: unknown): MockModel | undefined {
  return typeof id === 'string' ? models.find((m) => m.id === id) : undefined;
}

const VENDOR_NAMES: Record<string, string> = {
  openai: 'OpenAI',
  anthropic: 'Anthropic',
  'meta-llama': 'Meta',
  google: 'Google',
  mistralai: 'Mistral',
  'deepseek-ai': 'DeepSeek',
  deepseek: 'DeepSeek',
};

/** The upstream OpenRouter names in its `provider` field. */
export function openrouterProvider(id: string): string {
  const vendor = id.split('/')[0];
  if (vendor === 'meta-llama') return 'DeepInfra';
  return VENDOR_NAMES[vendor] ?? 'Together';
}

function displayName(id: string): string {
  const [vendor, rest] = id.includes('/') ? id.split('/', 2) : ['', id];
  const model = rest
    .replace(/:free$/, ' (free)')
    .split('-')
    .map((w) => (/^gpt$/i.test(w) ? 'GPT' : w.charAt(0).toUpperCase() + w.slice(1)))
    .join(' ')
    .replace(/^GPT (\w)/, 'GPT-$1');
  return vendor ? `${VENDOR_NAMES[vendor] ?? vendor}: ${model}` : model;
}

function openrouterModel(m: MockModel): Record<string, unknown> {
  const vendor = m.id.split('/')[0];
  const context = m.context_length ?? 128000;
  const multimodal = vendor === 'openai' || vendor === 'anthropic';
  const p = m.pricing;
  const pricing = p
    ? {
        prompt: p.prompt,
        completion: p.completion,
        request: p.request ?? '0',
        image: p.image ?? '0',
        web_search: '0',
        ...(p.internal_reasoning !== undefined ? { internal_reasoning: p.internal_reasoning } : {}),
        ...(p.input_cache_read !== undefined ? { input_cache_read: p.input_cache_read } : {}),
        ...(p.input_cache_write !== undefined ? { input_cache_write: p.input_cache_write } : {}),
      }
    : undefined;
  return {
    id: m.id,
    canonical_slug: m.id.replace(/:[a-z]+$/, ''),
    hugging_face_id: vendor === 'meta-llama' ? 'meta-llama/Meta-Llama-3.1-8B-Instruct' : '',
    name: displayName(m.id),
    created: CREATED,
    description: `${displayName(m.id)} served by the Gatewayz mock OpenRouter.`,
    context_length: context,
    architecture: {
      modality: multimodal ? 'text+image->text' : 'text->text',
      input_modalities: multimodal ? ['text', 'image'] : ['text'],
      output_modalities: ['text'],
      tokenizer: vendor === 'openai' ? 'GPT' : vendor === 'anthropic' ? 'Claude' : 'Llama3',
      instruct_type: vendor === 'meta-llama' ? 'llama3' : null,
    },
    ...(pricing ? { pricing } : {}),
    top_provider: {
      context_length: context,
      max_completion_tokens: m.max_completion_tokens ?? null,
      is_moderated: multimodal,
    },
    per_request_limits: null,
    supported_parameters: [
      'max_tokens',
      'temperature',
      'top_p',
      'stop',
      'frequency_penalty',
      'presence_penalty',
      'seed',
      'tools',
      'tool_choice',
      'response_format',
      'structured_outputs',
    ],
  };
}

/** USD per token string → USD per million tokens number, without float noise. */
function perMillion(v: string): number {
  return Number((Number(v) * 1e6).toPrecision(12));
}

function chutesModel(m: MockModel): Record<string, unknown> {
  const base: Record<string, unknown> = {
    id: m.id,
    object: 'model',
    created: CREATED,
    owned_by: 'sglang',
    root: m.id,
    parent: null,
    chute_id: '154ad01c-a431-5744-83c8-651215124360',
    quantization: 'fp8',
    max_model_len: m.context_length ?? 163840,
    context_length: m.context_length ?? 163840,
    max_output_length: m.max_completion_tokens ?? 163840,
    input_modalities: ['text'],
    output_modalities: ['text'],
    supported_features: ['json_mode', 'tools', 'structured_outputs'],
    supported_sampling_parameters: [
      'temperature',
      'top_p',
      'top_k',
      'frequency_penalty',
      'presence_penalty',
      'stop',
      'seed',
    ],
    confidential_compute: false,
  };
  if (m.pricing) {
    // Chutes publishes USD per million tokens as numbers.
    const prompt = perMillion(m.pricing.prompt);
    const completion = perMillion(m.pricing.completion);
    base.pricing = {
      prompt,
      completion,
      ...(m.pricing.input_cache_read !== undefined
        ? { input_cache_read: perMillion(m.pricing.input_cache_read) }
        : {}),
    };
    base.price = {
      input: { usd: prompt, tao: prompt / 400 },
      output: { usd: completion, tao: completion / 400 },
    };
  }
  return base;
}

const ANTHROPIC_NAMES: Record<string, [string, string]> = {
  'claude-3-5-sonnet-20241022': ['Claude Sonnet 3.5 (New)', '2024-10-22T00:00:00Z'],
  'claude-3-5-haiku-20241022': ['Claude Haiku 3.5', '2024-10-22T00:00:00Z'],
  'claude-3-opus-20240229': ['Claude Opus 3', '2024-02-29T00:00:00Z'],
};

export function modelsListBody(kind: MockKind, models: MockModel[]): Record<string, unknown> {
  switch (kind) {
    case 'openrouter':
      return { data: models.map(openrouterModel) };
    case 'anthropic': {
      const data = models.map((m) => {
        const [name, at] = ANTHROPIC_NAMES[m.id] ?? [m.id, '2025-01-01T00:00:00Z'];
        return { type: 'model', id: m.id, display_name: name, created_at: at };
      });
      return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
    }
    case 'chutes':
      return { object: 'list', data: models.map(chutesModel) };
    case 'featherless':
      return {
        object: 'list',
        data: models.map((m) => ({
          id: m.id,
          object: 'model',
          created: CREATED,
          owned_by: m.id.split('/')[0],
          model_class: 'llama3-8b',
          context_length: m.context_length ?? 8192,
          max_completion_tokens: m.max_completion_tokens ?? 4096,
          is_gated: false,
          available_on_current_plan: true,
        })),
      };
    case 'openai':
    case 'portkey':
      return {
        object: 'list',
        data: models.map((m) => ({
          id: m.id,
          object: 'model',
          created: CREATED,
          owned_by: kind === 'portkey' ? 'openai' : 'system',
        })),
      };
  }
}

/** OpenRouter `usage.cost` (USD) from the model's per-token prices. */
export function openrouterCost(u: MockUsage, p: MockPricing | undefined): number {
  if (!p) return 0;
  const price = (v: string | undefined, fallback: string) => Number(v ?? fallback);
  const cached = u.cached_tokens ?? 0;
  const written = u.cache_write_tokens ?? 0;
  const reasoning = u.reasoning_tokens ?? 0;
  const cost =
    (u.prompt_tokens - cached - written) * price(p.prompt, '0') +
    cached * price(p.input_cache_read, p.prompt) +
    written * price(p.input_cache_write, p.prompt) +
    (u.completion_tokens - reasoning) * price(p.completion, '0') +
    reasoning * price(p.internal_reasoning, p.completion) +
    price(p.request, '0');
  return Number(cost.toPrecision(12));
}
