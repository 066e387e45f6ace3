/**
 * AdaComp (Chen et al., AAAI'18): bin-local selection with a self-adjusting threshold, ternary
 * values and a residue. Per tensor and step:
 *   G = R + dW;  H = G + dW  (a large fresh gradient earns priority)
 *   split G into bins of binSize; select j when |H_j| >= max_{bin(j)} |G|
 *   send sign(G_j) for the selected, with one scale per tensor: the mean |G_j| over them
 *   R <- G - scale * sign(G) on the selected, R <- G elsewhere (unsent and quantization error)
 * The number sent adapts to the data (a bin with one outlier sends about one entry; a flat bin
 * may send several; a bin may send none). Tuning guide: binSize 50 for conv layers, 500 for fully
 * connected and recurrent ones (the paper's L_T). Deviation: indices are sent as absolute uint32
 * rather than bin offsets (4 bytes + 1 bit per selected entry).
 */
import { adacompDecodeAdd, adacompEmit, adacompSelect } from '../ops/kernels';
import { StateFields } from './base';
import { CompressorDescriptor, ENVELOPE, field, numel } from './descriptor';
import { GatherCompressor, ResidualState } from './gather';
import { checkPadding, corrupt, f32At, newPayload, readPayload, signBytes, u32At } from './wire';
import type { StepContext } from './types';

export interface AdaCompSpec { type: 'adacomp'; binSize?: number }

const KIND = 8;

export class AdaCompCompressor extends GatherCompressor {
  readonly type = 'adacomp';
  protected readonly stateFields: StateFields<ResidualState> = { residual: 'array' };
  protected readonly errorFeedback = true;
  readonly binSize: number;
  #sel = new Uint32Array(0);

  constructor(spec: AdaCompSpec) {
    super();
    this.binSize = spec.binSize ?? 50;
  }

  /** The selection needs dW and G separately, so the residue update is done here (R becomes G, then the sent part leaves). */
  protected override encodeWithFeedback(_name: string, dW: Float32Array, R: Float32Array, _ctx: StepContext, reuse?: Uint8Array): Promise<Uint8Array> {
    const n = dW.length;
    if (this.#sel.length < n) this.#sel = new Uint32Array(n);
    const [m, absSum] = adacompSelect(dW, R, this.binSize, this.#sel);
    const scale = m ? Math.fround(absSum / m) : 0;
    const bytes = newPayload(KIND, n, m, 4 + 4 * m + signBytes(m), reuse);
    new DataView(bytes.buffer, bytes.byteOffset).setFloat32(ENVELOPE, scale, true);
    const idx = new Uint32Array(bytes.buffer, bytes.byteOffset + ENVELOPE + 4, m);
    adacompEmit(R, this.#sel, m, scale, idx, bytes.subarray(ENVELOPE + 4 + 4 * m));
    return Promise.resolve(bytes);
  }

  protected encode(name: string, p: Float32Array, ctx: StepContext): Promise<Uint8Array> {
    return this.encodeWithFeedback(name, p, new Float32Array(p.length), ctx);
  }

  protected decodeAdd(payload: Uint8Array, out: Float32Array): void {
    const n = out.length;
    const { count: m, body } = readPayload(payload, KIND, n, (c) => (c <= n ? 4 + 4 * c + signBytes(c) : NaN));
    const scale = f32At(body, 0, 1)[0];
    if (!(scale >= 0) || !Number.isFinite(scale)) throw corrupt('its scale is negative or not finite');
    const idx = u32At(body, 4, m), signs = body.subarray(4 + 4 * m);
    checkPadding(signs, m);
    adacompDecodeAdd(idx, signs, scale, out); // checks the indices (ascending, in range) before adding
  }
}

export const descriptor: CompressorDescriptor<AdaCompSpec> = {
  type: 'adacomp', wireKind: KIND, computeNsPerElement: 26, fields: { binSize: field.int((v) => v >= 1 && v <= 1 << 24, 'an integer >= 1') },
  capabilities: { summable: false, errorFeedback: 'always', bareOperator: false, needsShape: false, collectives: ['allgather'] },
  expectedBytes: (spec, shape) => { const bins = Math.ceil(numel(shape) / (spec.binSize ?? 50)); return ENVELOPE + 4 + 4 * bins + signBytes(bins); },
  create: (spec) => new AdaCompCompressor(spec),
};
