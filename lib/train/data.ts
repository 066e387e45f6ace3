/**
 * A synthetic classification dataset for `gradcomp train`: a Gaussian mixture, one mean per
 * class (entries N(0, separation^2)), unit-variance noise, so it runs anywhere with no download
 * and its difficulty is one knob. Everything is a pure function of the seed: the data, the split
 * into worker shards, and the minibatch a worker draws at a step (so a resumed run draws exactly
 * the batches the uninterrupted run would have).
 *
 * Splits: IID shuffles before cutting shards; non-IID sorts by class and cuts contiguous shards,
 * so each worker sees about classes/workers classes (VRL-SGD's split, specs/algorithms.md §3(d)).
 */

/** A small counter-keyed generator: splitmix32 over a 32-bit state. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

/** Mixes several integers into one 32-bit seed. */
export function mix(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  }
  return h >>> 0;
}

export function normal(u: () => number): number {
  const a = Math.max(u(), 1e-12), b = u();
  return Math.sqrt(-2 * Math.log(a)) * Math.cos(2 * Math.PI * b);
}

export interface Dataset {
  x: Float32Array;
  y: Int32Array;
  samples: number;
  features: number;
  classes: number;
  /** Image data: the images' size (features = h w c). */
  image?: { h: number; w: number; c: number };
}

export interface DataOptions { samples: number; features: number; classes: number; separation: number; seed: number }

export function makeDataset(o: DataOptions): { train: Dataset; test: Dataset } {
  const u = rng(mix(o.seed, 0xda7a));
  const means = Float32Array.from({ length: o.classes * o.features }, () => o.separation * normal(u));
  const make = (samples: number): Dataset => {
    const x = new Float32Array(samples * o.features), y = new Int32Array(samples);
    for (let s = 0; s < samples; s++) {
      const c = Math.floor(u() * o.classes);
      y[s] = c;
      for (let f = 0; f < o.features; f++) x[s * o.features + f] = means[c * o.features + f] + normal(u);
    }
    return { x, y, samples, features: o.features, classes: o.classes };
  };
  const train = make(o.samples);
  return { train, test: make(Math.max(1, Math.floor(o.samples / 4))) };
}

/** The sample indices of worker `rank`'s shard. */
export function shard(data: Dataset, rank: number, workers: number, nonIid: boolean, seed: number): Int32Array {
  const order = Int32Array.from({ length: data.samples }, (_, i) => i);
  if (nonIid) {
    order.sort((a, b) => data.y[a] - data.y[b] || a - b);
  } else {
    const u = rng(mix(seed, 0x5a4d));
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(u() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
  }
  const lo = Math.floor((rank * data.samples) / workers), hi = Math.floor(((rank + 1) * data.samples) / workers);
  return order.slice(lo, hi);
}

/** The minibatch worker `rank` uses at `step`: `size` draws with replacement from its shard. */
export function batch(shardIdx: Int32Array, size: number, seed: number, rank: number, step: number): Int32Array {
  const u = rng(mix(seed, rank, step, 0xba7c));
  return Int32Array.from({ length: size }, () => shardIdx[Math.floor(u() * shardIdx.length)]);
}

/**
 * The minibatch worker `rank` uses at `step` when training by epochs: its shard in a fresh seeded
 * order each epoch, cut into consecutive batches (the last batch of an epoch may be short). A pure
 * function of (seed, rank, step), like `batch`.
 */
export function epochBatch(shardIdx: Int32Array, size: number, seed: number, rank: number, step: number, perEpoch: number): Int32Array {
  const epoch = Math.floor(step / perEpoch), at = (step % perEpoch) * size;
  const order = shardIdx.slice(), u = rng(mix(seed, rank, epoch, 0xe90c));
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(u() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order.slice(at, Math.min(order.length, at + size));
}

/** Steps per epoch, the same on every rank: the smallest shard (floor(samples / workers)) at batch `size`. */
export const stepsPerEpoch = (samples: number, workers: number, size: number): number => Math.max(1, Math.ceil(Math.floor(samples / workers) / size));

/** An image set (loadFashionMnist's split) as a Dataset. */
export function imageDataset(s: { images: Float32Array; labels: Uint8Array; count: number; rows: number; cols: number }, classes: number): Dataset {
  return { x: s.images, y: Int32Array.from(s.labels), samples: s.count, features: s.rows * s.cols, classes, image: { h: s.rows, w: s.cols, c: 1 } };
}
