/** AdaComp, the slow obvious way (the paper's rule, one element at a time, float32 arithmetic). */
const f = Math.fround;

export interface AdaCompStep { selected: number[]; scale: number; sent: Float32Array }

/** One step on residue R (updated in place) with gradient dW and bins of L. */
export function adacompStep(R: Float32Array, dW: Float32Array, L: number): AdaCompStep {
  const n = dW.length, G = new Float32Array(n), selected: number[] = [];
  for (let i = 0; i < n; i++) G[i] = f(R[i] + dW[i]);
  for (let b0 = 0; b0 < n; b0 += L) {
    const b1 = Math.min(n, b0 + L);
    let gmax = 0;
    for (let j = b0; j < b1; j++) gmax = Math.max(gmax, Math.abs(G[j]));
    if (gmax === 0) continue;
    for (let j = b0; j < b1; j++) if (Math.abs(f(G[j] + dW[j])) >= gmax) selected.push(j);
  }
  const scale = selected.length ? f(selected.reduce((s, j) => s + Math.abs(G[j]), 0) / selected.length) : 0;
  const sent = new Float32Array(n);
  for (const j of selected) sent[j] = G[j] < 0 ? -scale : scale;
  for (let i = 0; i < n; i++) R[i] = f(G[i] - sent[i]);
  return { selected, scale, sent };
}
