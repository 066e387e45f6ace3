/**
 * Synchronous data-parallel SGD with any compressor: every step each worker's gradient is reduced
 * to the workers' average, and every rank applies the same optimizer step, so the models stay
 * identical.
 *
 * Which tensors are compressed: those with at least `minCompressSize` elements (default 1024) and
 * more than one dimension when a shape is known (Tensors, or the `shapes` option; Float32Arrays
 * count as matrices). The rest, biases and norms, are fused into dense buckets of at most
 * `bucketBytes` (default 25 MiB, PyTorch DDP's cap) and averaged with one allreduce each; a bucket
 * fills across the compressed tensors between its members, as DDP's buckets fill in order.
 *
 * A step is a pipeline over units (a dense bucket or one compressed tensor), in reverse parameter
 * order like DDP's buckets (a backward pass produces the last layers first): every unit's
 * compression starts as soon as its gradients are in (off the main thread for large tensors), the
 * units communicate one after another in that fixed order (the same on every rank), and each
 * unit's optimizer update runs while the next unit is in flight. Buffers persist across steps;
 * the 1/workers of the average is folded into the optimizer update.
 *
 * The named variants are this flow with a fitting compressor: 'ef-sgd' (scaled sign or top-k
 * with error feedback: Karimireddy et al. 2019, Stich et al. 2018), 'signsgd' (majority vote,
 * Bernstein et al. 2019: the result is sign(sum of signs), applied with the optimizer's lr),
 * 'scalecom' (cyclic leader top-k, Chen et al. 2020) and 'powersgd' (Vogels et al. 2019).
 */
import { GradcompError, GradcompRangeError, GradcompTypeError, listed } from '../native/errors';
import { LockstepSession } from '../compress/base';
import type { Compressor, RoundResult, Session } from '../compress/types';
import type { Optimizer } from '../optim/optimizer';
import { vecAxpby, vecAxpy } from '../ops/kernels';
import { Tensor } from '../tensor/tensor';
import { BaseDistributed, BaseOptions, StateFields, StepHandle, StepInfo, TensorMap } from './base';
import type { Exchange } from './exchange';

export interface SyncOptions extends BaseOptions {
  /** Tensors smaller than this go through the dense bucket (default 1024). */
  minCompressSize?: number;
  /** Tensors that go through the dense bucket whatever their size, by name. */
  denseTensors?: readonly string[];
  /** Dense bucket capacity in bytes (default 25 MiB). */
  bucketBytes?: number;
  /** The optimizer of the compressed tensors when it must differ (DGC: its momentum moved into the compressor). */
  compressedOptimizer?: Optimizer;
  /**
   * 'tensor' (default): each compressed tensor is compressed on its own. 'model': every compressed
   * tensor is concatenated into one vector, so top-k (or DGC) selects across the whole model.
   */
  scope?: 'tensor' | 'model';
  /** Momentum applied on the worker before compression (the optimizer's, moved here): the compressor sees the momentum-corrected update. */
  workerMomentum?: { momentum: number; nesterov: boolean };
  /** With a lockstep compressor (PowerSGD): every compressed tensor's rounds travel together (default true). */
  lockstep?: boolean;
}

/** The sync family's state: workerMomentum, the momentum of the compressed tensors when it is applied before compression (flat over the layout). */
export interface SyncState { workerMomentum?: Float32Array }

interface Unit {
  /** Tensor indices in the layout. */
  tensors: number[];
  /** A dense bucket (its flat buffer, persistent) or the compressed tensors' average buffer. */
  flat: Float32Array;
  dense: boolean;
  /** A compressed unit's input when it is assembled (several tensors, or momentum first); persistent. */
  input?: Float32Array;
  /** Several compressed tensors, each its own session, whose rounds travel together (LockstepSession); its round buffers, persistent. */
  lockstep?: Float32Array[];
}

export class SyncSgd extends BaseDistributed<SyncState> {
  protected readonly fields: StateFields<SyncState> = { workerMomentum: 'array' };
  readonly minCompressSize: number;
  readonly bucketBytes: number;
  #units: Unit[] | undefined;

  constructor(readonly algorithm: string, ex: Exchange, optimizer: Optimizer, compressor: Compressor, readonly o: SyncOptions = {}) {
    super(ex, optimizer, compressor, o);
    this.minCompressSize = o.minCompressSize ?? 1024;
    this.bucketBytes = o.bucketBytes ?? 25 << 20;
  }

  protected override get identicalModels(): boolean { return true; }

  /** The units, fixed by the first step's layout: reverse parameter order; a dense bucket takes its place where it fills (or last). */
  #plan(): Unit[] {
    if (this.#units) return this.#units;
    const L = this.layout!, units: Unit[] = [];
    // A name that is no parameter (a typo) would leave the tensor compressed without a word.
    const stray = this.o.denseTensors?.find((n) => !L.names.includes(n));
    if (stray !== undefined) throw new GradcompTypeError('options.denseTensors', `options.denseTensors names ${stray}, which is not one of the parameters (${listed(L.names)})`);
    let cur: number[] = [], bytes = 0;
    const close = () => { if (cur.length) units.push({ tensors: cur, dense: true, flat: this.ex.alloc(cur.reduce((s, i) => s + L.sizes[i], 0)) }); cur = []; bytes = 0; };
    const model: number[] = [];
    const lockstep = this.compressor!.lockstep === true && this.o.lockstep !== false && this.o.scope !== 'model' && !this.o.workerMomentum;
    for (let i = L.names.length - 1; i >= 0; i--) {
      const dense = this.compressor!.type === 'none' || L.sizes[i] < this.minCompressSize || this.o.denseTensors?.includes(L.names[i]) === true || (L.shaped[i] && L.shapes[i].length <= 1);
      if (!dense && (this.o.scope === 'model' || lockstep)) { model.push(i); continue; }
      if (!dense) {
        // The open dense bucket stays open: it goes when full or at the end, so the small tensors
        // between compressed ones (biases, norms) travel together instead of as one small, latency-
        // bound collective between every two compressed tensors, each holding up the next one's issue.
        // With momentum before compression the compressor reads the momentum itself; Nesterov's g + mu m needs a buffer.
        units.push({ tensors: [i], dense: false, flat: new Float32Array(L.sizes[i]), ...(this.o.workerMomentum?.nesterov ? { input: new Float32Array(L.sizes[i]) } : {}) });
        continue;
      }
      if (cur.length > 0 && bytes + 4 * L.sizes[i] > this.bucketBytes) close();
      cur.push(i);
      bytes += 4 * L.sizes[i];
    }
    close();
    if (model.length) {
      // Every compressed tensor in one unit, first (it is the largest): one vector (scope 'model'), or in lockstep.
      const n = model.reduce((a, i) => a + L.sizes[i], 0);
      units.unshift(lockstep ? { tensors: model, dense: false, flat: new Float32Array(n), lockstep: [] }
        : { tensors: model, dense: false, flat: new Float32Array(n), input: new Float32Array(n) });
    }
    return (this.#units = units);
  }

  /** Starts a unit once its gradients are in: dense buckets copy, compressed tensors begin a session. */
  async #prepare(u: Unit, g: (i: number) => Float32Array, t: number): Promise<Session | null> {
    const L = this.layout!;
    if (u.dense) {
      let off = 0;
      for (const i of u.tensors) { u.flat.set(g(i), off); off += L.sizes[i]; }
      return null;
    }
    // What the optimizer applies undecoded (one tensor a session): low-rank factors, sparse entries, QSGD payloads.
    const opt = this.#optimizerOf(u), single = u.tensors.length === 1;
    const factored = typeof opt.updateLowRank === 'function', sparse = single && typeof opt.updateSparse === 'function';
    const quantized = single && typeof opt.updateQuantized === 'function';
    if (u.lockstep) {
      // Each tensor its own session (in the unit's order, the same on every rank), their rounds together.
      const sessions: Session[] = [];
      let off = 0;
      for (const i of u.tensors) {
        const ctx = { step: t, rank: this.rank, workers: this.workers, shape: L.shaped[i] ? L.shapes[i] : undefined, out: u.flat.subarray(off, off + L.sizes[i]), deferScale: true, factored };
        sessions.push(await this.compressClock.time(() => this.compressor!.begin(L.names[i], g(i), ctx)));
        off += L.sizes[i];
      }
      return new LockstepSession(sessions, u.lockstep);
    }
    const i = u.tensors[0], wm = this.o.workerMomentum;
    let input = g(i);
    if (u.input || wm) {
      // Assemble the unit's input: the tensors one after another, each momentum-corrected first when momentum runs here.
      // One tensor without Nesterov: the compressor reads its momentum in place (compressors never write their input).
      let off = 0;
      const mom = wm ? this.arr('workerMomentum', L.total) : undefined;
      for (const j of u.tensors) {
        const dst = u.input?.subarray(off, off + L.sizes[j]);
        if (wm && mom) {
          const m = mom.subarray(L.offsets[j], L.offsets[j] + L.sizes[j]);
          vecAxpby(m, g(j), 1, wm.momentum); // m = mu m + g, one pass
          if (!dst) input = m;
          else if (wm.nesterov) { dst.set(g(j)); vecAxpy(dst, m, wm.momentum); } else dst.set(m); // Nesterov: g + mu m
        } else dst!.set(g(j));
        off += L.sizes[j];
      }
      if (u.input) input = u.input;
    }
    const name = u.tensors.length === 1 ? L.names[i] : 'model';
    const shape = u.tensors.length === 1 && L.shaped[i] ? L.shapes[i] : undefined;
    // An optimizer that applies a low-rank average directly (SGD): PowerSGD hands over its factors, never forming the average.
    return this.compressClock.time(() => this.compressor!.begin(name, input, { step: t, rank: this.rank, workers: this.workers, shape, out: u.flat, deferScale: true,
      factored: factored && single, sparse, quantized }));
  }

  #optimizerOf(u: Unit): Optimizer {
    return !u.dense && this.o.compressedOptimizer ? this.o.compressedOptimizer : this.optimizer;
  }

  /** Issues a unit's (first) collective; what comes back is awaited by #finish. */
  #issue(u: Unit, session: Session | null): Promise<unknown> {
    const flight = session === null ? this.ex.sum(u.flat) : session.round ? this.ex.issue(session.round) : Promise.resolve(undefined);
    flight.catch(() => undefined); // awaited in #finish, in order
    return flight;
  }

  /** Completes a unit's communication (its remaining rounds), then starts its optimizer update (returned, not awaited). */
  async #finish(u: Unit, session: Session | null, flight: Promise<unknown>, p: Record<string, Float32Array>, lr: number): Promise<{ done: Promise<unknown> }> {
    const L = this.layout!;
    let scale = 1 / this.workers;
    if (session === null) await flight;
    else {
      await this.ex.run(session, this.compressClock, session.round ? flight as Promise<RoundResult> : undefined);
      scale = session.scale;
    }
    const opt = this.#optimizerOf(u);
    const subs = session instanceof LockstepSession ? session.sessions : null;
    let off = 0;
    const updates = u.tensors.map((i, j) => {
      const name = L.names[i], avg = u.flat.subarray(off, off + L.sizes[i]), own = subs ? subs[j] : session;
      off += L.sizes[i];
      const gradScale = subs ? subs[j].scale : scale;
      // A low-rank average (PowerSGD's factors) goes to the optimizer unformed: one pass instead of three.
      if (own?.factors && opt.updateLowRank) return opt.updateLowRank(name, p[name], own.factors, { lr, gradScale, async: true });
      // Sparse payloads (top-k, DGC) likewise: their entries are applied without decoding into a dense average.
      if (own?.sparse && opt.updateSparse) return opt.updateSparse(name, p[name], own.sparse, { lr, gradScale, async: true });
      // QSGD payloads too, decoded inside the update; on this thread, as they live in a receive buffer that is reused.
      if (own?.quantized && opt.updateQuantized) return opt.updateQuantized(name, p[name], own.quantized, { lr, gradScale });
      return opt.update(name, p[name], avg, { lr, gradScale, async: true });
    });
    return { done: Promise.all(updates) };
  }

  /**
   * The pipeline: `prepared[k]` settles when unit k has started compressing (its gradients are in).
   * Unit k's collective is issued before unit k - 1 is decoded and updated, so communication flies
   * while this thread works; the issue order is fixed, hence the same on every rank.
   */
  async #pipeline(p: Record<string, Float32Array>, prepared: Promise<Session | null>[]): Promise<void> {
    const lr = this.optimizer.lr, updates: Promise<unknown>[] = [], units = this.#units!;
    let prev: { u: Unit; s: Session | null; flight: Promise<unknown> } | undefined;
    try {
      for (let k = 0; k < prepared.length; k++) {
        const s = await prepared[k];
        const flight = this.#issue(units[k], s);
        if (prev) updates.push((await this.#finish(prev.u, prev.s, prev.flight, p, lr)).done);
        prev = { u: units[k], s, flight };
      }
      if (prev) updates.push((await this.#finish(prev.u, prev.s, prev.flight, p, lr)).done);
    } finally {
      await Promise.allSettled(updates);
    }
    await Promise.all(updates);
  }

  protected async doStep(p: Record<string, Float32Array>, g: Record<string, Float32Array>, t: number): Promise<{ lr: number; synced: boolean }> {
    const L = this.layout!, lr = this.optimizer.lr;
    // Every gradient is in: compress the units one after another, in the order they communicate, so
    // the first collective starts after one unit's compression rather than after all of them (the
    // kernels run off the main thread; started together they would share the cores to the end).
    let before: Promise<unknown> = Promise.resolve();
    const prepared = this.#plan().map((u) => {
      const p = before.then(() => this.#prepare(u, (i) => g[L.names[i]], t));
      before = p.catch(() => undefined);
      return p;
    });
    prepared.forEach((x) => x.catch(() => undefined)); // a failure surfaces through the pipeline, in order
    await this.#pipeline(p, prepared);
    return { lr, synced: true };
  }

  /** Gradients handed in per tensor: each unit starts compressing and communicating as soon as its tensors are in. */
  override beginStep(params: TensorMap): StepHandle {
    const { p } = this.views(params);
    if (this.steps === 0) return super.beginStep(params); // the first step fixes the layout and checks the start
    this.checkLoadedNames();
    const L = this.layout!, units = this.#plan(), t = this.steps;
    const unitOf = new Map<string, number>(), grads = new Map<number, Float32Array>(), missing = units.map((u) => u.tensors.length);
    units.forEach((u, k) => u.tensors.forEach((i) => unitOf.set(L.names[i], k)));
    const starts = units.map(() => { let open!: () => void; const ready = new Promise<void>((r) => { open = r; }); return { ready, open }; });
    const prepared = units.map((u, k) => starts[k].ready.then(() => this.#prepare(u, (i) => grads.get(i)!, t)));
    prepared.forEach((x) => x.catch(() => undefined));
    let ended = false;
    return {
      ready: (name, grad) => {
        if (ended) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', 'ready() after end()', 'name');
        const k = unitOf.get(name);
        if (k === undefined) throw new GradcompRangeError('name', `${name} is not one of the parameters`);
        const i = L.names.indexOf(name), g = grad instanceof Tensor ? grad.data as Float32Array : grad;
        if (Object.prototype.toString.call(g) !== '[object Float32Array]' || g.length !== L.sizes[i]) {
          throw new GradcompRangeError(`grads.${name}`, `Expected a Float32Array of ${L.sizes[i]} elements for ${name}`);
        }
        if (grads.has(i)) throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', `the gradient of ${name} was already handed in`, 'name');
        grads.set(i, g);
        if (--missing[k] === 0) starts[k].open();
      },
      end: async (): Promise<StepInfo> => {
        ended = true;
        const absent = L.names.filter((_, i) => !grads.has(i));
        if (absent.length) throw new GradcompRangeError('grads', `end() before every gradient was handed in (missing: ${absent.join(', ')})`);
        const lr = this.optimizer.lr;
        await this.#pipeline(p, prepared);
        this.steps = t + 1;
        this.optimizer.countStep();
        return { step: t, lr, synced: true };
      },
    };
  }
}
