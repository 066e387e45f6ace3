/**
 * AdaComp (Chen et al., AAAI'18): bin-local selection with a self-adjusting threshold, ternary
 * values and a residue. Per tensor and step:
 *   G = R + dW;  H = G + dW  (a large fresh gradient earns priority)
 *   split G into bins of binSize; select j when |H_j| >= max_{bin(j)} |G|
 *   send sign(G_j) for the selected, with one scale per tensor: the mean |G_j| over them
 *   R <- G - scale * sign(G) on the selected, R <- G elsewhere (unsent and quantization error)
 * The number sent adapts to the data (a bin with one outlier sends about one entry; a flat bin
 * may send several; a bin may send none). The mechanics follow the spec's reading of the paper
 * ([recall]; specs/compressors.md §6). Tuning guide: binSize 50 for conv layers, 500 for fully
 * connected and recurrent ones (the paper's L_T). Deviation: indices are sent as absolute uint32
 * rather than bin offsets (4 bytes + 1 bit per selected entry).
 */
import { GatherCompressor } from './gather';
import { corrupt, f32At, newPayload, readPayload, u32At } from './wire';
import type { StepContext } from './types';

export interface AdaCompSpec { type: 'adacomp'; binSize?: number }

const signBytes = (m: number) => (Math.ceil(m / 8) + 3) & ~3;

export class AdaCompCompressor extends GatherCompressor {
  readonly type = 'adacomp';
  protected readonly errorFeedback = true;
  readonly binSize: number;

  constructor(spec: AdaCompSpec) {
    super();
    this.binSize = spec.binSize ?? 50;
  }

  /** The selection needs dW and G separately, so the residue update is done here. */
  protected override encodeWithFeedback(_name: string, dW: Float32Array, R: Float32Array): Uint8Array {
    const n = dW.length, L = this.binSize;
    const G = new Float32Array(n);
    for (let i = 0; i < n; i++) G[i] = R[i] + dW[i];
    const sel: number[] = [];
    for (let b0 = 0; b0 < n; b0 += L) {
      const b1 = Math.min(n, b0 + L);
      let gmax = 0;
      for (let j = b0; j < b1; j++) gmax = Math.max(gmax, Math.abs(G[j]));
      if (gmax === 0) continue;
      for (let j = b0; j < b1; j++) if (Math.abs(G[j] + dW[j]) >= gmax) sel.push(j);
    }
    let scale = 0;
    for (const j of sel) scale += Math.abs(G[j]);
    scale = sel.length ? Math.fround(scale / sel.length) : 0;
    R.set(G);
    const m = sel.length;
    const { bytes } = newPayload('adacomp', n, m, 4 + 4 * m + signBytes(m));
    new DataView(bytes.buffer).setFloat32(16, scale, true);
    const idx = new Uint32Array(bytes.buffer, 20, m);
    const signs = bytes.subarray(20 + 4 * m);
    sel.forEach((j, t) => {
      idx[t] = j;
      const neg = G[j] < 0;
      if (neg) signs[t >> 3] |= 1 << (t & 7);
      R[j] = G[j] - (neg ? -scale : scale);
    });
    return bytes;
  }

  protected encode(name: string, p: Float32Array, _ctx: StepContext): Uint8Array {
    return this.encodeWithFeedback(name, p, new Float32Array(p.length));
  }

  protected decodeAdd(payload: Uint8Array, out: Float32Array): void {
    const n = out.length;
    const { count: m, body } = readPayload(payload, 'adacomp', n, (c) => (c <= n ? 4 + 4 * c + signBytes(c) : NaN));
    const scale = f32At(body, 0, 1)[0];
    if (!(scale >= 0) || !Number.isFinite(scale)) throw corrupt('its scale is negative or not finite');
    const idx = u32At(body, 4, m), signs = body.subarray(4 + 4 * m);
    for (let t = 0; t < m; t++) if (idx[t] >= n || (t > 0 && idx[t] <= idx[t - 1])) throw corrupt('its indices are out of range or not ascending');
    for (let t = m; t < 8 * signs.length; t++) if ((signs[t >> 3] >> (t & 7)) & 1) throw corrupt('its padding bits are set');
    for (let t = 0; t < m; t++) out[idx[t]] += (signs[t >> 3] >> (t & 7)) & 1 ? -scale : scale;
  }
}
