import type { Registry } from 'prom-client';

/**
 * Counters, histograms and a gauge for the per-request metrics, registered in a prom-client
 * Registry and exported exactly as prom-client's own types are. prom-client hashes a child's label
 * values and validates them again on every `inc`/`observe`, and allocates for each; here a child
 * is a plain object made once per label set, and recording is arithmetic on it.
 */

type Labels = Record<string, string>;

/** One exported sample, in the shape prom-client's Registry formats. */
interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
  sharedLabels?: Labels;
}

/** What a prom-client Registry reads from a metric. */
interface Exported {
  name: string;
  help: string;
  type: string;
  values: Sample[];
  aggregator: 'sum';
}

abstract class Labeled<C extends { labels: Labels }> {
  readonly aggregator = 'sum' as const;
  protected children = new Map<string, C>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }

  protected abstract create(labels: Labels): C;

  /** The child of these label values (in `labelNames` order); keep it: it is the fast path. */
  child(...values: string[]): C {
    const key = values.join('\u0000');
    let c = this.children.get(key);
    if (!c) {
      if (values.length !== this.labelNames.length)
        throw new Error(
          `${this.name}: ${this.labelNames.length} label values expected, got ${values.length}`,
        );
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => {
        labels[n] = values[i]!;
      });
      c = this.create(labels);
      this.children.set(key, c);
    }
    return c;
  }

  reset(): void {
    this.children = new Map();
    if (this.labelNames.length === 0) this.child();
  }

  async get(): Promise<Exported> {
    const e = await this.getForPromString();
    // As prom-client's get(): each sample's shared labels merged into its own.
    e.values = e.values.map(({ sharedLabels, ...v }) => ({ ...v, labels: { ...v.labels, ...sharedLabels } }));
    return e;
  }

  abstract getForPromString(): Promise<Exported>;
}

export interface CounterChild {
  labels: Labels;
  value: number;
  inc(by?: number): void;
}

export class FastCounter extends Labeled<CounterChild> {
  readonly type = 'counter';

  constructor(name: string, help: string, labelNames: readonly string[], registry: Registry) {
    super(name, help, labelNames, registry);
    if (labelNames.length === 0) this.child(); // exported from the start, as prom-client does
  }

  protected create(labels: Labels): CounterChild {
    return {
      labels,
      value: 0,
      inc(by = 1) {
        if (!(by >= 0) || !Number.isFinite(by)) throw new Error(`counter increment must be ≥ 0, got ${by}`);
        this.value += by;
      },
    };
  }

  async getForPromString(): Promise<Exported> {
    const values: Sample[] = [];
    for (const c of this.children.values()) values.push({ value: c.value, labels: c.labels });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

export interface HistogramChild {
  labels: Labels;
  /** Per bucket (not cumulative); the last is above every bound. */
  counts: number[];
  sum: number;
  count: number;
  observe(v: number): void;
}

export class FastHistogram extends Labeled<HistogramChild> {
  readonly type = 'histogram';

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
    if (labelNames.length === 0) this.child(); // exported from the start, as prom-client does
  }

  protected create(labels: Labels): HistogramChild {
    const bounds = this.bounds;
    return {
      labels,
      counts: new Array<number>(bounds.length + 1).fill(0),
      sum: 0,
      count: 0,
      observe(v: number) {
        if (!Number.isFinite(v)) throw new TypeError(`Value is not a valid number: ${v}`);
        let i = 0;
        while (i < bounds.length && v > bounds[i]!) i++;
        this.counts[i]!++;
        this.sum += v;
        this.count++;
      },
    };
  }

  /** The same samples, in the same order, as prom-client's Histogram. */
  async getForPromString(): Promise<Exported> {
    const values: Sample[] = [];
    const bucket = `${this.name}_bucket`;
    for (const c of this.children.values()) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += c.counts[i]!;
        values.push({ value: acc, labels: { le }, metricName: bucket, sharedLabels: c.labels });
      });
      values.push(
        { value: c.count, labels: { le: '+Inf' }, metricName: bucket, sharedLabels: c.labels },
        { value: c.sum, labels: {}, metricName: `${this.name}_sum`, sharedLabels: c.labels },
        { value: c.count, labels: {}, metricName: `${this.name}_count`, sharedLabels: c.labels },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

/** A gauge without labels, moved up and down (requests in flight). */
export class FastGauge {
  readonly type = 'gauge';
  readonly aggregator = 'sum' as const;
  private value = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }

  inc(): void {
    this.value++;
  }

  dec(): void {
    this.value--;
  }

  reset(): void {
    this.value = 0;
  }

  async get(): Promise<Exported> {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values: [{ value: this.value, labels: {} }],
      aggregator: this.aggregator,
    };
  }
}
