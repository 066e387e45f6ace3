/**
 * Synchronous data-parallel SGD with any compressor (specs/algorithms.md §5.1, §9): every step
 * each worker's gradient is reduced to the workers' average, and every rank applies the same
 * optimizer step, so the models stay identical.
 *
 * Which tensors are compressed (§9.4): those with at least `minCompressSize` elements (default
 * 1024) and more than one dimension when a shape is known (Tensors; Float32Arrays count as
 * matrices). The rest, biases and norms, are fused into dense buckets of at most `bucketBytes`
 * (default 25 MiB, PyTorch DDP's cap) and averaged with one allreduce each, so a hundred small
 * tensors cost a few collectives, not a hundred. A compressed tensor runs its compressor's rounds:
 * a summable allreduce (none, rand-k, PowerSGD's P and Q, ScaleCom), an allgather of payloads
 * (top-k, QSGD, sign, DGC, ...), or a broadcast (ScaleCom's leader indices).
 *
 * The named variants are this flow with a fitting compressor: 'ef-sgd' (scaled sign or top-k
 * with error feedback: Karimireddy et al. 2019, Stich et al. 2018), 'signsgd' (majority vote,
 * Bernstein et al. 2019: the result is sign(sum of signs), applied with the optimizer's lr),
 * 'scalecom' (cyclic leader top-k, Chen et al. 2020) and 'powersgd' (Vogels et al. 2019).
 */
import { performance } from 'node:perf_hooks';
import type { Compressor } from '../compress/types';
import type { Optimizer } from '../optim/optimizer';
import { BaseDistributed } from './base';
import type { Exchange } from './exchange';

export interface SyncOptions {
  /** Tensors smaller than this go through the dense bucket (default 1024). */
  minCompressSize?: number;
  /** Dense bucket capacity in bytes (default 25 MiB). */
  bucketBytes?: number;
}

export class SyncSgd extends BaseDistributed {
  readonly minCompressSize: number;
  readonly bucketBytes: number;

  constructor(readonly algorithm: string, ex: Exchange, optimizer: Optimizer, compressor: Compressor, o: SyncOptions = {}) {
    super(ex, optimizer, compressor);
    this.minCompressSize = o.minCompressSize ?? 1024;
    this.bucketBytes = o.bucketBytes ?? 25 << 20;
  }

  protected override get identicalModels(): boolean { return true; }

  #planned: { buckets: number[][]; compressed: number[] } | undefined;

  /** Dense buckets (runs of tensor indices) and the compressed tensor indices; the layout is
   * fixed by the first step, so this is computed once. */
  #plan(): { buckets: number[][]; compressed: number[] } {
    if (this.#planned) return this.#planned;
    const L = this.layout!;
    const buckets: number[][] = [], compressed: number[] = [];
    let cur: number[] = [], bytes = 0;
    L.names.forEach((_, i) => {
      const dense = this.compressor!.type === 'none' || L.sizes[i] < this.minCompressSize || (L.shaped[i] && L.shapes[i].length <= 1);
      if (!dense) { compressed.push(i); return; }
      if (cur.length > 0 && bytes + 4 * L.sizes[i] > this.bucketBytes) { buckets.push(cur); cur = []; bytes = 0; }
      cur.push(i);
      bytes += 4 * L.sizes[i];
    });
    if (cur.length) buckets.push(cur);
    return (this.#planned = { buckets, compressed });
  }

  protected async doStep(p: Record<string, Float32Array>, g: Record<string, Float32Array>, t: number): Promise<{ lr: number; synced: boolean }> {
    const L = this.layout!;
    const avg: Record<string, Float32Array> = {};
    const { buckets, compressed } = this.#plan();
    for (const b of buckets) {
      const total = b.reduce((s, i) => s + L.sizes[i], 0);
      const flat = new Float32Array(total);
      let off = 0;
      for (const i of b) { flat.set(g[L.names[i]], off); off += L.sizes[i]; }
      await this.ex.average(flat);
      off = 0;
      for (const i of b) { avg[L.names[i]] = flat.subarray(off, off + L.sizes[i]); off += L.sizes[i]; }
    }
    for (const i of compressed) {
      const name = L.names[i];
      const comm0 = this.ex.traffic.commMs, t0 = performance.now();
      const session = await this.compressor!.begin(name, g[name], { step: t, rank: this.rank, workers: this.workers, shape: L.shapes[i] });
      avg[name] = await this.ex.run(session);
      // Compression time: the session's wall time minus the part spent in collectives.
      this.compressMs += performance.now() - t0 - (this.ex.traffic.commMs - comm0);
    }
    const lr = this.optimizer.lr;
    this.optimizer.step(p, avg, { lr });
    return { lr, synced: true };
  }
}
