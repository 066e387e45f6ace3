/**
 * `gradcomp influence`: TracIn over the checkpoints `gradcomp train --checkpoint DIR` wrote. The
 * training options come from the checkpoints themselves (model, data, seed, learning rate, flipped
 * labels), so the command needs only the folder. The training set is sharded across ranks (each
 * scores its contiguous part); self-influence is gathered in training order, and each test
 * example's proponents and opponents are merged from every rank's top k: the same answer as one
 * rank. With --flip-labels in the training options, it reports how many flipped examples the top
 * of the self-influence ranking holds.
 */
import { parseArgs } from 'node:util';
import type { Communicator } from '../comm/types';
import { GradcompError, GradcompTypeError } from '../native/errors';
import { fileOf, stepsOnDisk, TrainCheckpoint } from '../train/checkpoint';
import { readCheckpointFile } from '../checkpoint/file';
import type { Dataset } from '../train/data';
import { flippedLabels, loadData } from '../train/job';
import { createModel, Model } from '../train/model';
import type { TrainOptions } from '../train/options';
import { Factors, projectFactors, proponents, Ranked, scoreFactors, selfInfluence, withBias } from './tracin';

export interface InfluenceOptions {
  checkpoint: string;
  /** Test examples to explain (indices into the test set). */
  test: number[];
  top: number;
  /** Random projection of the factors to this many columns each (0: exact). */
  project: number;
  seed: number;
  /** Use only the newest N checkpoints (default all). */
  last?: number;
  json: boolean;
}

export const INFLUENCE_USAGE = `usage: gradcomp influence --checkpoint DIR [flags]     (TracIn over gradcomp train's checkpoints)
  --checkpoint DIR   the folder gradcomp train --checkpoint wrote (keep several: --keep-checkpoints 5)
  --test I[,J...]    test examples to explain: their top proponents and opponents
  --top K            how many (default 5)       --last N   use the newest N checkpoints only
  --project D        random projections of D columns (default 0: exact)   --seed S
  --workers N        ranks to shard the training set over (default 1)   --json`;

export function parseInfluenceArgs(argv: string[]): InfluenceOptions & { workers: number } {
  let v: Record<string, unknown>;
  try {
    v = parseArgs({ args: argv, strict: true, options: {
      checkpoint: { type: 'string' }, test: { type: 'string' }, top: { type: 'string' }, project: { type: 'string' }, seed: { type: 'string' },
      last: { type: 'string' }, workers: { type: 'string' }, json: { type: 'boolean' },
    } }).values;
  } catch (e) { throw new GradcompTypeError('argv', `${(e as Error).message.split('\n')[0]}\n${INFLUENCE_USAGE}`); }
  const int = (name: string, min: number, def?: number): number => {
    const raw = v[name];
    if (raw === undefined) { if (def === undefined) throw new GradcompTypeError(`--${name}`, `--${name} is required\n${INFLUENCE_USAGE}`); return def; }
    const x = Number(raw);
    if (!Number.isInteger(x) || x < min) throw new GradcompTypeError(`--${name}`, `Expected an integer >= ${min} for --${name} but received ${String(raw)}`);
    return x;
  };
  if (typeof v.checkpoint !== 'string') throw new GradcompTypeError('--checkpoint', `--checkpoint DIR is required\n${INFLUENCE_USAGE}`);
  const test = v.test === undefined ? [] : String(v.test).split(',').map((t) => {
    const x = Number(t);
    if (!Number.isInteger(x) || x < 0) throw new GradcompTypeError('--test', `Expected test indices like 0,5,17 but received ${String(v.test)}`);
    return x;
  });
  return { checkpoint: v.checkpoint, test, top: int('top', 1, 5), project: int('project', 0, 0), seed: int('seed', 0, 1), last: v.last === undefined ? undefined : int('last', 1),
    workers: int('workers', 1, 1), json: v.json === true };
}

/** The checkpoints (rank 0's files, oldest first) with their parameters and learning rates, and the training options. */
export function readCheckpoints(dir: string, last?: number): { options: TrainOptions; list: { step: number; params: Record<string, Float32Array>; lr: number }[] } {
  const steps = stepsOnDisk(dir, 0).sort((a, b) => a - b).slice(-(last ?? Infinity));
  if (steps.length === 0) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', `no training checkpoints in ${dir} (write them with gradcomp train --checkpoint ${dir} --keep-checkpoints 5)`, '--checkpoint');
  let options: TrainOptions | undefined;
  const list = steps.map((step) => {
    const ck = readCheckpointFile(fileOf(dir, 0, step)) as TrainCheckpoint;
    options = ck.options as unknown as TrainOptions;
    const lr = Number(((ck.state.optimizer as unknown as { lr?: number }).lr) ?? options.lr);
    return { step, params: ck.params, lr: lr > 0 ? lr : options.lr };
  });
  return { options: options!, list };
}

function factorsOf(model: Model, params: Record<string, Float32Array>, data: Dataset, idx: Int32Array, project: number, seed: number): Factors {
  const parts: { a: Float32Array; delta: Float32Array }[] = [];
  let inputs = 0, classes = 0;
  for (let lo = 0; lo < idx.length; lo += 2048) {
    const r = model.lastLayer(params, data, idx.subarray(lo, Math.min(idx.length, lo + 2048)));
    inputs = r.inputs; classes = r.classes;
    parts.push(r);
  }
  const join = (k: 'a' | 'delta') => { const out = new Float32Array(parts.reduce((s, p) => s + p[k].length, 0)); let o = 0; for (const p of parts) { out.set(p[k], o); o += p[k].length; } return out; };
  const f = withBias({ a: join('a'), delta: join('delta'), n: idx.length, inputs, classes });
  return project > 0 ? projectFactors(f, project, Math.min(project, f.classes), seed) : f;
}

export interface InfluenceResult {
  checkpoints: number[];
  trainSize: number;
  /** Self-influence of every training example, in training order (rank 0 only). */
  self: Float64Array;
  explained: { test: number; label: number; proponents: Ranked[]; opponents: Ranked[] }[];
  flipped?: { count: number; curve: { inspected: number; found: number }[] };
}

export async function influenceRank(comm: Communicator, o: InfluenceOptions): Promise<InfluenceResult | null> {
  const { options, list } = readCheckpoints(o.checkpoint, o.last);
  const { train, test } = loadData(options);
  const images = options.data !== 'synthetic';
  const model = createModel({ kind: options.model, features: train.features, classes: train.classes, hidden: options.hidden ?? (images ? [256, 128] : [64]), seed: options.seed,
    ...(train.image ? { image: train.image } : {}) });
  for (const t of o.test) if (t >= test.samples) throw new GradcompTypeError('--test', `Expected test indices below ${test.samples} but received ${t}`);
  const lo = Math.floor((comm.rank * train.samples) / comm.size), hi = Math.floor(((comm.rank + 1) * train.samples) / comm.size);
  const mine = Int32Array.from({ length: hi - lo }, (_, i) => lo + i), testIdx = Int32Array.from(o.test);
  const self = new Float64Array(mine.length), scores = new Float32Array(mine.length * testIdx.length);
  for (const c of list) {
    const ft = factorsOf(model, c.params, train, mine, o.project, o.seed);
    selfInfluence(ft, c.lr, self);
    if (testIdx.length) scoreFactors(ft, factorsOf(model, c.params, test, testIdx, o.project, o.seed), c.lr, scores);
  }
  // Self-influence in training order on every rank (float64 through the allgather).
  const all = await comm.allgatherv(self);
  // Each test example: this rank's top k both ways, merged across ranks.
  const explained: InfluenceResult['explained'] = [];
  for (let j = 0; j < testIdx.length; j++) {
    const local = proponents(scores, mine.length, testIdx.length, j, o.top, lo);
    const pack = (r: Ranked[]) => { const a = new Float64Array(2 * o.top).fill(NaN); r.forEach((x, i) => { a[2 * i] = x.index; a[2 * i + 1] = x.score; }); return a; };
    const gathered = await comm.allgather(Float64Array.of(...pack(local.proponents), ...pack(local.opponents)));
    const merge = (off: number, sign: number): Ranked[] => {
      const out: Ranked[] = [];
      for (let r = 0; r < comm.size; r++) for (let i = 0; i < o.top; i++) {
        const at = r * 4 * o.top + off + 2 * i;
        if (!Number.isNaN(gathered[at])) out.push({ index: gathered[at], score: gathered[at + 1] });
      }
      return out.sort((a, b) => sign * (b.score - a.score) || a.index - b.index).slice(0, o.top);
    };
    explained.push({ test: testIdx[j], label: test.y[testIdx[j]], proponents: merge(0, 1), opponents: merge(2 * o.top, -1) });
  }
  if (comm.rank !== 0) return null;
  const result: InfluenceResult = { checkpoints: list.map((c) => c.step), trainSize: train.samples, self: all.data, explained };
  const flipped = flippedLabels(options, train.samples);
  if (flipped.length) result.flipped = { count: flipped.length, curve: detectionCurve(all.data, flipped) };
  return result;
}

/** Fraction of the flipped examples found against the fraction of the training set inspected, by self-influence. */
export function detectionCurve(self: Float64Array, flipped: Int32Array): { inspected: number; found: number }[] {
  const order = Array.from(self.keys()).sort((a, b) => self[b] - self[a] || a - b), isFlipped = new Uint8Array(self.length);
  for (const i of flipped) isFlipped[i] = 1;
  const curve: { inspected: number; found: number }[] = [{ inspected: 0, found: 0 }];
  let found = 0;
  order.forEach((i, r) => {
    found += isFlipped[i];
    const step = Math.max(1, Math.floor(self.length / 100));
    if ((r + 1) % step === 0 || r === order.length - 1) curve.push({ inspected: (r + 1) / self.length, found: found / flipped.length });
  });
  return curve;
}

/** The report `gradcomp influence` prints. */
export function formatInfluence(r: InfluenceResult): string {
  const lines = [`gradcomp influence: TracIn over checkpoints at steps ${r.checkpoints.join(', ')}, ${r.trainSize} training examples (last dense layer)`];
  const top = Array.from(r.self.keys()).sort((a, b) => r.self[b] - r.self[a] || a - b).slice(0, 10);
  lines.push(`highest self-influence (likely mislabelled or rare): ${top.map((i) => `${i} (${r.self[i].toPrecision(3)})`).join(', ')}`);
  for (const e of r.explained) {
    lines.push(`test ${e.test} (label ${e.label}): proponents ${e.proponents.map((p) => `${p.index} (${p.score.toPrecision(3)})`).join(', ') || '-'}; ` +
      `opponents ${e.opponents.map((p) => `${p.index} (${p.score.toPrecision(3)})`).join(', ') || '-'}`);
  }
  if (r.flipped) {
    const at = (f: number) => r.flipped!.curve.find((c) => c.inspected >= f - 1e-9)?.found ?? 1;
    lines.push(`flipped labels: ${r.flipped.count}; the top 10% by self-influence holds ${(100 * at(0.1)).toFixed(1)}% of them (random: 10%), the top 20% ${(100 * at(0.2)).toFixed(1)}%`);
  }
  return lines.join('\n');
}
