// AdaComp (Chen et al., AAAI'18): bin-local selection with a self-adjusting threshold. The
// compressor's two halves around the payload allocation: select (which entries a step sends), then
// emit (their indices and signs, and the residue update).
#pragma once
#include "gradcomp/gradcomp.h"

namespace gradcomp {

// R += dW (R holds G = R + dW afterwards); in each bin of `bin` elements, select j when
// |G_j + dW_j| >= max_bin |G| (bins whose max is 0 select nothing). sel (capacity n) receives the
// selected indices in ascending order, *m their count, *abs_sum = sum |G_j| over them (float64,
// summed per fixed piece of bins, pieces added in order: independent of the thread count).
gc_status adacomp_select(const float* dW, float* R, uint64_t n, uint32_t bin, uint32_t* sel, uint64_t* m, double* abs_sum);
// For t < m: idx[t] = sel[t]; sign bit t of signs (ceil(m/8) bytes, zero padded) = R[sel[t]] < 0;
// R[sel[t]] -= sign * scale.
gc_status adacomp_emit(float* R, const uint32_t* sel, uint64_t m, float scale, uint32_t* idx, uint8_t* signs);
// out[idx[t]] += sign_t ? -scale : scale, after checking idx strictly ascending and < n
// (GC_ERR_CORRUPT_PAYLOAD otherwise, out untouched).
gc_status adacomp_decode_add(const uint32_t* idx, const uint8_t* signs, uint64_t m, float scale, float* out, uint64_t n);

}  // namespace gradcomp
