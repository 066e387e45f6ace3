// The fused pass of top-k (topk.cc's step 2), in its own translation unit: over one chunk, form
// acc = scale * grad + residual (EF) or read x, write the residual back, count keys above and at the
// sampled threshold t, and store the candidates (key > t) in the chunk's slab. Scalar, AVX2 and
// AVX-512 versions do the same IEEE operations.
#pragma once
#include <cstdint>

namespace gradcomp {
namespace topk_detail {

constexpr uint64_t kChunk = 32768;      // elements per chunk (128 KiB of fp32)
constexpr uint64_t kSampleMinN = 65536;  // below this, select directly without sampling
constexpr uint32_t kSlack = 16;          // vector stores may write this far past a slab's fill

struct Chunk {
  uint64_t lo, hi;
  uint32_t* sidx;  // slab (nullptr: candidates not stored, use the source)
  float* sval;
  uint64_t stored;  // candidates written to the slab (key > t)
  uint64_t gt;      // true count of key > t (> stored when the slab overflowed)
  uint64_t eq;      // count of key == t
  uint64_t sel_gt, sel_eq, out_off, quota;
};

struct PassArgs {
  const float* g;  // nullptr for plain top-k
  float* r;        // EF residual (written); for plain top-k the read-only source
  float scale;
  uint32_t t;
  uint64_t cap;  // slab capacity
};

// The pass for chunk c: EF (grad set) or plain.
void run_pass(bool ef, const PassArgs& a, Chunk& c);

}  // namespace topk_detail
}  // namespace gradcomp
