import type { ProviderSettings } from '../config/config.js';

/** A model as a provider's catalog describes it, before prices from config are applied. */
export interface CatalogModel {
  /** The id callers use (e.g. `openai/gpt-4o-mini`, `Sao10K/L3-8B-Stheno-v3.2`). Case is kept. */
  id: string;
  /** The id the provider expects on the wire. */
  upstreamId: string;
  name: string;
  description: string | null;
  contextLength: number | null;
  maxOutputTokens: number | null;
  /** OpenRouter-style per-token USD strings, when the provider publishes prices. */
  pricing: Record<string, string | number> | null;
  modality: string | null;
  raw: unknown;
}

/**
 * A provider is data: where it lives, how it authenticates, how its catalog reads, and how model
 * ids map. Only a different wire format needs code beyond this.
 */
export interface ProviderDefinition {
  name: string;
  displayName: string;
  defaultBaseUrl: string;
  wire: 'openai' | 'anthropic';
  /** Prefix our ids carry for this provider's bare upstream ids (`openai/` for OpenAI). */
  namespace?: string;
  /** Endpoints the provider serves natively beyond chat completions (else the gateway translates). */
  capabilities?: { responses?: boolean };
  headers(settings: ProviderSettings, ctx: { appName: string; appUrl: string }): Record<string, string>;
  parseCatalog(body: unknown): CatalogModel[];
  /** Catalog path when it is not `/models` (e.g. a page size for providers that paginate). */
  catalogPath?: string;
}
