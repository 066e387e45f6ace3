// Elementwise kernels, reductions, Philox fills, rand-k supports and DGC's accumulation.
#include <vector>

#include "../core/codec.h"
#include "../core/gemm.h"
#include "../core/rng.h"
#include "../core/vector.h"
#include "arena.h"
#include "ops.h"

namespace gradcomp_napi {
namespace {

// philoxFill(out, seedLo, seedHi, step, stream, kind 0 uniform | 1 normal)
GC_JS(JS_philoxFill) {
  GC_SPAN(float, 0, out);
  GC_U64(1, seed_lo, 0xffffffffULL);
  GC_U64(2, seed_hi, 0xffffffffULL);
  GC_U64(3, step, 0xffffffffULL);
  GC_U64(4, stream, 0xffffffffULL);
  GC_U64(5, kind, 1);
  gcnapi::ThrowStatus(a.env, gradcomp::philox_fill(out.data, out.len, seed_lo | (seed_hi << 32), static_cast<uint32_t>(step),
                                                   static_cast<uint32_t>(stream), static_cast<int>(kind)), "philoxFill");
  return nullptr;
}

// reduceInto(dst, src, op 0 sum | 1 max): two Float32Arrays or two Float64Arrays of one length.
GC_JS(JS_reduceInto) {
  GC_U64(2, op, 1);
  if (gcnapi::TypedArrayKind(a, 0) == napi_float64_array) {
    GC_SPAN(double, 0, dst);
    GC_SPAN(double, 1, src);
    GC_CHECK(dst.len == src.len, "reduceInto lengths disagree");
    gcnapi::ThrowStatus(a.env, gradcomp::reduce_into(dst.data, src.data, dst.len, static_cast<int>(op), GC_FLOAT64), "reduceInto");
    return nullptr;
  }
  GC_SPAN(float, 0, dst);
  GC_SPAN(float, 1, src);
  GC_CHECK(dst.len == src.len, "reduceInto lengths disagree");
  gcnapi::ThrowStatus(a.env, gradcomp::reduce_into(dst.data, src.data, dst.len, static_cast<int>(op), GC_FLOAT32), "reduceInto");
  return nullptr;
}

// reduceMany(dst, data, offsets: Uint32Array, op): dst = fold of data[offsets[j] + i] over j, in order.
template <typename T>
napi_value ReduceMany(const gcnapi::Args& a, gc_dtype dtype) {
  GC_SPAN(T, 0, dst);
  GC_SPAN(T, 1, data);
  GC_SPAN(uint32_t, 2, offsets);
  GC_U64(3, op, 1);
  GC_CHECK(offsets.len >= 1 && offsets.len <= 4096, "reduceMany needs 1 to 4096 sources");
  std::vector<const void*> srcs(offsets.len);
  for (uint64_t j = 0; j < offsets.len; ++j) {
    GC_CHECK(offsets.data[j] <= data.len && data.len - offsets.data[j] >= dst.len, "reduceMany: a source runs past the data");
    srcs[j] = data.data + offsets.data[j];
  }
  gcnapi::ThrowStatus(a.env, gradcomp::reduce_many(dst.data, srcs.data(), static_cast<uint32_t>(offsets.len), dst.len, static_cast<int>(op), dtype), "reduceMany");
  return nullptr;
}
GC_JS(JS_reduceMany) {
  if (gcnapi::TypedArrayKind(a, 0) == napi_float64_array) return ReduceMany<double>(a, GC_FLOAT64);
  return ReduceMany<float>(a, GC_FLOAT32);
}

// gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc): c = alpha op(a) op(b) + beta c, row-major.
GC_JS(JS_gemm) {
  const bool ta = gcnapi::Bool(a, 0), tb = gcnapi::Bool(a, 1);
  GC_U64(2, m, 0xffffffffULL);
  GC_U64(3, n, 0xffffffffULL);
  GC_U64(4, k, 0xffffffffULL);
  GC_F64(5, alpha);
  GC_SPAN(float, 6, am);
  GC_U64(7, lda, 0xffffffffULL);
  GC_SPAN(float, 8, bm);
  GC_U64(9, ldb, 0xffffffffULL);
  GC_F64(10, beta);
  GC_SPAN(float, 11, cm);
  GC_U64(12, ldc, 0xffffffffULL);
  // Every row an operand's stride reaches must lie inside its buffer.
  const auto fits = [](uint64_t rows, uint64_t cols, uint64_t ld, uint64_t len) { return rows == 0 || cols == 0 || (ld >= cols && (rows - 1) * ld + cols <= len); };
  GC_CHECK(fits(ta ? k : m, ta ? m : k, lda, am.len) && fits(tb ? n : k, tb ? k : n, ldb, bm.len) && fits(m, n, ldc, cm.len), "gemm: an operand is shorter than its shape and stride");
  Lease lease(4 * gradcomp::gemm_scratch_floats(ta, tb, m, n, k));
  GC_CHECK(lease.ok(), "gemm: out of memory for scratch");
  gcnapi::ThrowStatus(a.env, gradcomp::sgemm(ta, tb, m, n, k, static_cast<float>(alpha), am.data, lda, bm.data, ldb, static_cast<float>(beta), cm.data, ldc,
                                             static_cast<float*>(lease.scratch().ptr)), "gemm");
  return nullptr;
}

// vecAdd(dst, a, b): dst = a + b;  vecScale(x, s);  vecAxpy(y, x, s): y += s x
GC_JS(JS_vecAdd) {
  GC_SPAN(float, 0, dst);
  GC_SPAN(float, 1, x);
  GC_SPAN(float, 2, y);
  GC_CHECK(dst.len == x.len && dst.len == y.len, "vecAdd lengths disagree");
  gcnapi::ThrowStatus(a.env, gradcomp::vec_add(dst.data, x.data, y.data, dst.len), "vecAdd");
  return nullptr;
}
GC_JS(JS_vecScale) {
  GC_SPAN(float, 0, x);
  GC_F64(1, s);
  gcnapi::ThrowStatus(a.env, gradcomp::vec_scale(x.data, x.len, static_cast<float>(s)), "vecScale");
  return nullptr;
}
GC_JS(JS_vecAxpby) {
  GC_SPAN(float, 0, y);
  GC_SPAN(float, 1, x);
  GC_F64(2, s);
  GC_F64(3, b);
  GC_CHECK(y.len == x.len, "vecAxpby lengths disagree");
  gcnapi::ThrowStatus(a.env, gradcomp::vec_axpby(y.data, x.data, y.len, static_cast<float>(s), static_cast<float>(b)), "vecAxpby");
  return nullptr;
}
GC_JS(JS_vecAxpy) {
  GC_SPAN(float, 0, y);
  GC_SPAN(float, 1, x);
  GC_F64(2, s);
  GC_CHECK(y.len == x.len, "vecAxpy lengths disagree");
  gcnapi::ThrowStatus(a.env, gradcomp::vec_axpy(y.data, x.data, y.len, static_cast<float>(s)), "vecAxpy");
  return nullptr;
}

// vecMulAdd(s, x, y, eta): s += eta x y (float64 per element);  rowsSumSq(x, cols, out): out[r] = |row r|^2 (float64)
GC_JS(JS_vecMulAdd) {
  GC_SPAN(float, 0, s);
  GC_SPAN(float, 1, x);
  GC_SPAN(float, 2, y);
  GC_F64(3, eta);
  GC_CHECK(s.len == x.len && s.len == y.len, "vecMulAdd lengths disagree");
  gcnapi::ThrowStatus(a.env, gradcomp::vec_mul_add(s.data, x.data, y.data, s.len, eta), "vecMulAdd");
  return nullptr;
}
GC_JS(JS_rowsSumSq) {
  GC_SPAN(float, 0, x);
  GC_U64(1, cols, 0xffffffffULL);
  GC_SPAN(double, 2, out);
  GC_CHECK(cols > 0 && x.len == out.len * cols, "rowsSumSq: x is not out.length rows of cols");
  gcnapi::ThrowStatus(a.env, gradcomp::rows_sumsq(x.data, out.len, cols, out.data), "rowsSumSq");
  return nullptr;
}

// normSum(x, kind 0 sum of squares | 1 sum of |x|) -> number (float64, fixed order)
GC_JS(JS_normSum) {
  GC_SPAN(float, 0, x);
  GC_U64(1, kind, 1);
  return gcnapi::Number(a.env, gradcomp::vec_norm_sum(x.data, x.len, static_cast<int>(kind)));
}

// scatterAdd(out, idx, vals, scale): validated sparse add (ERR_GRADCOMP_CORRUPT_PAYLOAD)
GC_JS(JS_scatterAdd) {
  GC_SPAN(float, 0, out);
  GC_SPAN(uint32_t, 1, idx);
  GC_SPAN(float, 2, vals);
  GC_F64(3, scale);
  GC_CHECK(idx.len == vals.len, "scatterAdd lengths disagree");
  gcnapi::ThrowStatus(a.env, gradcomp::scatter_add(out.data, out.len, idx.data, vals.data, idx.len, static_cast<float>(scale)), "scatterAdd");
  return nullptr;
}

// randkSupport(n, seedLo, seedHi, step, stream, out): out.length distinct ascending indices < n
GC_JS(JS_randkSupport) {
  GC_U64(0, n, 0xffffffffULL);
  GC_U64(1, seed_lo, 0xffffffffULL);
  GC_U64(2, seed_hi, 0xffffffffULL);
  GC_U64(3, step, 0xffffffffULL);
  GC_U64(4, stream, 0xffffffffULL);
  GC_SPAN(uint32_t, 5, out);
  GC_CHECK(out.len <= n, "randkSupport: k > n");
  gcnapi::ThrowStatus(a.env, gradcomp::randk_support(n, out.len, seed_lo | (seed_hi << 32), static_cast<uint32_t>(step),
                                                     static_cast<uint32_t>(stream), out.data), "randkSupport");
  return nullptr;
}

// dgcAccumulate(g, u, v, mu, nesterov, clip)
GC_JS(JS_dgcAccumulate) {
  GC_SPAN(float, 0, g);
  GC_SPAN(float, 1, u);
  GC_SPAN(float, 2, v);
  GC_F64(3, mu);
  GC_F64(5, clip);
  GC_CHECK(g.len == u.len && g.len == v.len, "dgcAccumulate lengths disagree");
  gcnapi::ThrowStatus(a.env, gradcomp::dgc_accumulate(g.data, u.data, v.data, g.len, static_cast<float>(mu), gcnapi::Bool(a, 4),
                                                      static_cast<float>(clip)), "dgcAccumulate");
  return nullptr;
}

// checksum(bytes: Uint8Array) -> uint32 (thread-count independent CRC32C tree)
GC_JS(JS_checksum) {
  GC_SPAN(uint8_t, 0, bytes);
  return gcnapi::Number(a.env, gradcomp::checksum(bytes.data, bytes.len));
}

}  // namespace

void ExportVector(napi_env env, napi_value exports) {
  const gcnapi::Fn fns[] = {{"philoxFill", JS_philoxFill}, {"reduceInto", JS_reduceInto}, {"reduceMany", JS_reduceMany}, {"gemm", JS_gemm}, {"vecAdd", JS_vecAdd},
                            {"vecScale", JS_vecScale}, {"vecAxpy", JS_vecAxpy}, {"vecAxpby", JS_vecAxpby}, {"vecMulAdd", JS_vecMulAdd}, {"rowsSumSq", JS_rowsSumSq}, {"normSum", JS_normSum},
                            {"scatterAdd", JS_scatterAdd}, {"randkSupport", JS_randkSupport}, {"dgcAccumulate", JS_dgcAccumulate}, {"checksum", JS_checksum}};
  gcnapi::Export(env, exports, fns, sizeof fns / sizeof fns[0]);
}

}  // namespace gradcomp_napi
