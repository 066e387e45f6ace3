/**
 * Per-layer policy: rules as data decide which compressor each tensor gets.
 *
 *   const policy = createPolicy({
 *     default: { type: 'topk', ratio: 0.01 },
 *     rules: [{ match: /^embed/, use: { type: 'qsgd', levels: 127 } }, { match: 'head.weight', use: 'none' }],
 *   });
 *   console.log(policy.explain({ 'embed.weight': [30000, 512], 'head.bias': [10] }).text);
 *
 * Order of decisions: the first matching rule wins; otherwise 1-D tensors (biases, norms) and
 * tensors under minNumel elements go uncompressed (skip1d, minNumel), as do tensors whose expected
 * ratio is below minRatio; otherwise the default. One compressor instance serves every tensor with
 * the same spec (their state is keyed by tensor name).
 */
import { GradcompRangeError, typeError } from '../native/errors';
import { createCompressor, CompressorSpec, validateSpec } from './create';
import type { Compressor, CompressorState } from './types';

export interface TensorMeta { name: string; shape: readonly number[]; numel: number }
export interface PolicyRule { match: string | RegExp | ((meta: TensorMeta) => boolean); use: CompressorSpec | 'none' }
export interface PolicyOptions {
  default: CompressorSpec;
  rules?: PolicyRule[];
  /** Tensors with fewer elements go uncompressed (default 1024). */
  minNumel?: number;
  /** 1-D tensors go uncompressed (default true). */
  skip1d?: boolean;
  /** Tensors whose expected compression ratio is below this go uncompressed (default 1.5). */
  minRatio?: number;
}

export interface PolicyDecision { name: string; shape: number[]; numel: number; spec: CompressorSpec; reason: string;
  denseBytes: number; expectedBytes: number; ratio: number;
  /** With explain's link: the estimated step time of this tensor, dense and compressed (ms), and the link rate below which compression pays (Gbit/s; 0: never). */
  denseMs?: number; compressedMs?: number; crossoverGbps?: number }

export interface ExplainOptions {
  /** The link between hosts in Gbit/s, or 'shared-memory' (the local backend: about 20 Gbit/s here). Adds the time estimate and warnings. */
  link?: number | 'shared-memory';
  /** Workers (default 4). */
  workers?: number;
}

/**
 * What the local backend's allreduce achieves on the reference machine, as a link rate (bench:e2e:
 * 100.7 MB over 4 ranks in about 57 ms on comm.alloc() buffers, the ring's 151 MB per rank at
 * about 21 Gbit/s).
 */
const SHARED_MEMORY_GBPS = 20;

/** Bytes one worker sends per step for a tensor (dense fp32 is 4 per element), from its compressor's descriptor. */
export function expectedBytes(spec: CompressorSpec, shape: readonly number[]): number {
  return validateSpec(spec).expectedBytes(spec as never, shape);
}

const NONE: CompressorSpec = { type: 'none' };

export class Policy {
  readonly #opts: Required<Omit<PolicyOptions, 'rules'>> & { rules: PolicyRule[] };
  readonly #instances = new Map<string, Compressor>();

  constructor(opts: PolicyOptions) {
    if (opts === null || typeof opts !== 'object') throw typeError('options', 'a policy options object', opts);
    createCompressor(opts.default); // validates
    const rules = opts.rules ?? [];
    if (!Array.isArray(rules)) throw typeError('options.rules', 'an array of rules', rules);
    rules.forEach((r, i) => {
      const m = r?.match;
      if (!(typeof m === 'string' || m instanceof RegExp || typeof m === 'function')) {
        throw typeError(`options.rules[${i}].match`, 'a string, a RegExp or a function', m);
      }
      if (r.use !== 'none') createCompressor(r.use);
    });
    const minNumel = opts.minNumel ?? 1024, minRatio = opts.minRatio ?? 1.5;
    if (!Number.isInteger(minNumel) || minNumel < 0) throw new GradcompRangeError('options.minNumel', `Expected an integer >= 0 for options.minNumel but received ${String(minNumel)}`);
    if (!(minRatio >= 0)) throw new GradcompRangeError('options.minRatio', `Expected a number >= 0 for options.minRatio but received ${String(minRatio)}`);
    this.#opts = { default: opts.default, rules, minNumel, minRatio, skip1d: opts.skip1d ?? true };
  }

  /** The spec a tensor gets and why. */
  decide(name: string, shape: readonly number[]): PolicyDecision {
    const numel = shape.reduce((a, b) => a * b, 1);
    const meta: TensorMeta = { name, shape, numel };
    let spec: CompressorSpec = this.#opts.default, reason = 'default';
    const hit = this.#opts.rules.findIndex((r) =>
      typeof r.match === 'string' ? r.match === name : r.match instanceof RegExp ? r.match.test(name) : r.match(meta));
    if (hit >= 0) {
      const use = this.#opts.rules[hit].use;
      spec = use === 'none' ? NONE : use;
      reason = `rule ${hit}`;
    } else if (this.#opts.skip1d && shape.length <= 1) {
      spec = NONE; reason = '1-D tensor';
    } else if (numel < this.#opts.minNumel) {
      spec = NONE; reason = `under ${this.#opts.minNumel} elements`;
    } else if (4 * numel / expectedBytes(spec, shape) < this.#opts.minRatio) {
      spec = NONE; reason = `expected ratio under ${this.#opts.minRatio}`;
    }
    const bytes = expectedBytes(spec, shape);
    return { name, shape: [...shape], numel, spec, reason, denseBytes: 4 * numel, expectedBytes: bytes, ratio: (4 * numel) / bytes };
  }

  /** The compressor instance for a tensor (shared by every tensor with the same spec). */
  compressorFor(name: string, shape: readonly number[]): Compressor {
    const spec = this.decide(name, shape).spec;
    const key = JSON.stringify(spec);
    let c = this.#instances.get(key);
    if (!c) this.#instances.set(key, (c = createCompressor(spec)));
    return c;
  }

  /**
   * What each tensor gets and the bytes it is expected to send per step, as rows and a table. With
   * options.link, also a time estimate per tensor (bytes through the busiest link of a ring, plus
   * the compressor's compute: its descriptor's computeNsPerElement) and a warning for every tensor
   * whose compressor is expected to be slower than dense on that link, with the crossover rate.
   */
  explain(shapes: Record<string, readonly number[]>, options: ExplainOptions = {}): { rows: PolicyDecision[]; text: string; warnings: string[] } {
    const rows = Object.entries(shapes).map(([name, shape]) => this.decide(name, shape));
    const warnings = options.link === undefined ? [] : estimate(rows, options);
    const dense = rows.reduce((a, r) => a + r.denseBytes, 0), sent = rows.reduce((a, r) => a + r.expectedBytes, 0);
    const lines = ['tensor | shape | compressor | why | dense bytes | expected bytes | ratio', '---|---|---|---|---|---|---'];
    for (const r of rows) {
      const spec = Object.entries(r.spec).map(([k, v]) => (k === 'type' ? v : `${k}=${v}`)).join(' ');
      lines.push(`${r.name} | [${r.shape.join(', ')}] | ${spec} | ${r.reason} | ${r.denseBytes} | ${r.expectedBytes} | ${r.ratio.toFixed(1)}x`);
    }
    lines.push(`total | | | | ${dense} | ${sent} | ${(dense / Math.max(1, sent)).toFixed(1)}x`);
    for (const w of warnings) lines.push(`warning: ${w}`);
    return { rows, text: lines.join('\n'), warnings };
  }

  /** Every compressor's state, keyed by its spec. */
  state(): Record<string, CompressorState> {
    return Object.fromEntries([...this.#instances].map(([k, c]) => [k, c.state()]));
  }

  load(state: Record<string, CompressorState>): void {
    if (state === null || typeof state !== 'object') throw typeError('state', 'a policy state object', state);
    for (const [key, s] of Object.entries(state)) {
      let c = this.#instances.get(key);
      if (!c) this.#instances.set(key, (c = createCompressor(JSON.parse(key) as CompressorSpec)));
      c.load(s);
    }
  }
}

/** Fills the rows' time estimates; returns a warning per tensor whose compressor is expected to be slower than dense. */
function estimate(rows: PolicyDecision[], o: ExplainOptions): string[] {
  const link = o.link === 'shared-memory' ? SHARED_MEMORY_GBPS : o.link;
  if (typeof link !== 'number' || !(link > 0) || !Number.isFinite(link)) throw typeError('options.link', "a link rate in Gbit/s > 0 or 'shared-memory'", o.link);
  const n = o.workers ?? 4;
  if (!Number.isInteger(n) || n < 1) throw new GradcompRangeError('options.workers', `Expected an integer >= 1 for options.workers but received ${String(n)}`);
  const bytesPerMs = (link * 1e9) / 8 / 1e3, ring = (2 * (n - 1)) / n;
  const out: string[] = [];
  for (const r of rows) {
    const d = validateSpec(r.spec);
    const traffic = d.capabilities.summable ? ring * r.expectedBytes : (n - 1) * r.expectedBytes;
    const computeMs = ((d.computeNsPerElement ?? 3) * r.numel) / 1e6;
    r.denseMs = (ring * r.denseBytes) / bytesPerMs;
    r.compressedMs = computeMs + traffic / bytesPerMs;
    const saved = ring * r.denseBytes - traffic;
    r.crossoverGbps = saved <= 0 ? 0 : computeMs === 0 ? Infinity : (saved * 8) / (computeMs * 1e6);
    if (r.spec.type !== 'none' && r.compressedMs > r.denseMs) {
      out.push(`${r.name}: ${r.spec.type} is expected to be slower than dense on this link (${r.compressedMs.toFixed(1)} vs ${r.denseMs.toFixed(1)} ms per step); ` +
        (r.crossoverGbps > 0 ? `it pays below about ${r.crossoverGbps.toFixed(1)} Gbit/s` : 'it sends no fewer bytes than dense with these workers'));
    }
  }
  return out;
}

export function createPolicy(opts: PolicyOptions): Policy {
  return new Policy(opts);
}
