import { randomBytes } from 'node:crypto';
import type { PipelineSpan, PipelineTracer } from '../inference/pipeline.js';

type AttrValue = string | number | boolean;

interface OtlpAttr {
  key: string;
  value: { stringValue: string } | { intValue: string } | { doubleValue: number } | { boolValue: boolean };
}

interface FinishedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: OtlpAttr[];
  status: { code: number; message?: string };
}

const nowNanos = (): string =>
  BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)).toString();

function attr(key: string, v: AttrValue): OtlpAttr {
  if (typeof v === 'string') return { key, value: { stringValue: v } };
  if (typeof v === 'boolean') return { key, value: { boolValue: v } };
  return Number.isInteger(v) ? { key, value: { intValue: String(v) } } : { key, value: { doubleValue: v } };
}

/** `00-<trace id>-<parent span id>-<flags>` (W3C Trace Context). */
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/** A span of the caller's (never ended or exported here): only a parent for ours. */
class RemoteParent implements PipelineSpan {
  constructor(
    readonly traceId: string,
    readonly spanId: string,
  ) {}
  set(): void {}
  end(): void {}
}

class Span implements PipelineSpan {
  readonly spanId = randomBytes(8).toString('hex');
  private readonly start = nowNanos();
  private readonly attrs: OtlpAttr[] = [];
  private ended = false;

  constructor(
    private readonly tracer: OtlpTracer,
    readonly traceId: string,
    private readonly name: string,
    private readonly parentId: string | undefined,
    attrs: Record<string, AttrValue> | undefined,
    private readonly server: boolean,
  ) {
    if (attrs) for (const k in attrs) this.attrs.push(attr(k, attrs[k]!));
  }

  set(key: string, value: AttrValue): void {
    if (!this.ended) this.attrs.push(attr(key, value));
  }

  end(err?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    const status = err ? { code: 2, message: (err as Error)?.message ?? String(err) } : { code: 0 };
    this.tracer.finished({
      traceId: this.traceId,
      spanId: this.spanId,
      ...(this.parentId ? { parentSpanId: this.parentId } : {}),
      name: this.name,
      kind: this.server ? 2 : 1, // SERVER for the request, INTERNAL for its stages
      startTimeUnixNano: this.start,
      endTimeUnixNano: nowNanos(),
      attributes: this.attrs,
      status,
    });
  }
}

export interface TracerOptions {
  /** OTLP/HTTP base URL; spans are POSTed as JSON to `<endpoint>/v1/traces`. */
  endpoint: string;
  headers?: Record<string, string>;
  serviceName: string;
  instanceId: string;
  version: string;
  /** Export at least this often (ms). */
  flushIntervalMs?: number;
  /** Spans kept waiting at most; beyond, new spans are dropped (counted) rather than grow memory. */
  maxQueue?: number;
  onError?: (e: unknown) => void;
}

/**
 * A small OpenTelemetry tracer exporting OTLP/HTTP JSON in batches. Enough for spans around the
 * pipeline's stages without the SDK's weight; any OTLP collector (Jaeger, Tempo, the
 * OpenTelemetry Collector) accepts it on port 4318.
 */
export class OtlpTracer implements PipelineTracer {
  private queue: FinishedSpan[] = [];
  private readonly timer: NodeJS.Timeout;
  private inFlight: Promise<void> | null = null;
  dropped = 0;
  exported = 0;
  private readonly url: string;
  private readonly resource: { attributes: OtlpAttr[] };

  constructor(private readonly opts: TracerOptions) {
    this.url = opts.endpoint.endsWith('/v1/traces') ? opts.endpoint : `${opts.endpoint}/v1/traces`;
    this.resource = {
      attributes: [
        attr('service.name', opts.serviceName),
        attr('service.version', opts.version),
        attr('service.instance.id', opts.instanceId),
      ],
    };
    this.timer = setInterval(() => void this.flush(), opts.flushIntervalMs ?? 1000);
    this.timer.unref();
  }

  start(name: string, parent?: PipelineSpan, attrs?: Record<string, AttrValue>): PipelineSpan {
    const p = parent as Span | RemoteParent | undefined;
    const server = p === undefined || p instanceof RemoteParent;
    return new Span(this, p?.traceId ?? randomBytes(16).toString('hex'), name, p?.spanId, attrs, server);
  }

  remoteParent(traceparent: unknown): PipelineSpan | undefined {
    if (typeof traceparent !== 'string') return undefined;
    const m = TRACEPARENT.exec(traceparent.trim());
    if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
    return new RemoteParent(m[1]!, m[2]!);
  }

  /** Called by a span when it ends. */
  finished(s: FinishedSpan): void {
    if (this.queue.length >= (this.opts.maxQueue ?? 2048)) {
      this.dropped++;
      return;
    }
    this.queue.push(s);
    if (this.queue.length >= 512) void this.flush();
  }

  pending(): number {
    return this.queue.length;
  }

  /** Send what is queued (one request at a time). */
  async flush(): Promise<void> {
    if (this.inFlight) await this.inFlight;
    if (this.queue.length === 0) return;
    const spans = this.queue;
    this.queue = [];
    const body = JSON.stringify({
      resourceSpans: [
        {
          resource: this.resource,
          scopeSpans: [{ scope: { name: 'gatewayz', version: this.opts.version }, spans }],
        },
      ],
    });
    this.inFlight = (async () => {
      try {
        const res = await fetch(this.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...this.opts.headers },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        await res.arrayBuffer().catch(() => {});
        if (!res.ok) throw new Error(`OTLP export: HTTP ${res.status}`);
        this.exported += spans.length;
      } catch (e) {
        this.dropped += spans.length;
        this.opts.onError?.(e);
      } finally {
        this.inFlight = null;
      }
    })();
    await this.inFlight;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
