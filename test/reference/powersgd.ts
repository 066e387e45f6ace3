/** Oracle for the PowerSGD step, in float64: P = M Q, Gram-Schmidt, Q = Mᵀ P. */
export function refPowerSgd(m: Float32Array, rows: number, cols: number, q: Float32Array, rank: number) {
  const P = new Float64Array(rows * rank);
  for (let i = 0; i < rows; i++)
    for (let k = 0; k < rank; k++) {
      let s = 0;
      for (let j = 0; j < cols; j++) s += m[i * cols + j] * q[j * rank + k];
      P[i * rank + k] = s;
    }
  for (let k = 0; k < rank; k++) {
    let n0 = 0;
    for (let i = 0; i < rows; i++) n0 += P[i * rank + k] ** 2;
    n0 = Math.sqrt(n0);
    for (let sweep = 0; sweep < 2; sweep++)
      for (let c = 0; c < k; c++) {
        let dot = 0;
        for (let i = 0; i < rows; i++) dot += P[i * rank + c] * P[i * rank + k];
        for (let i = 0; i < rows; i++) P[i * rank + k] -= dot * P[i * rank + c];
      }
    let nv = 0;
    for (let i = 0; i < rows; i++) nv += P[i * rank + k] ** 2;
    nv = Math.sqrt(nv);
    const inv = nv > 1e-6 * n0 && nv > 0 ? 1 / nv : 0;
    for (let i = 0; i < rows; i++) P[i * rank + k] *= inv;
  }
  const Q = new Float64Array(cols * rank);
  for (let j = 0; j < cols; j++)
    for (let k = 0; k < rank; k++) {
      let s = 0;
      for (let i = 0; i < rows; i++) s += m[i * cols + j] * P[i * rank + k];
      Q[j * rank + k] = s;
    }
  return { p: P, q: Q };
}

/** The approximation P Qᵀ (rows x cols). */
export function approx(p: ArrayLike<number>, q: ArrayLike<number>, rows: number, cols: number, rank: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let k = 0; k < rank; k++) s += p[i * rank + k] * q[j * rank + k];
      out[i * cols + j] = s;
    }
  return out;
}
