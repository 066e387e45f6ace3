/* Philox-4x32-10 (Salmon et al., SC'11, "Parallel random numbers: as easy as 1, 2, 3").
 * Counter-based: the output depends only on (key, counter), so a result does not depend on
 * thread count or launch shape, and the CPU and CUDA builds produce the same bits.
 * Only <stdint.h> is used so this header is shared by native/core and cuda/kernels. */
#ifndef GRADCOMP_PHILOX_H
#define GRADCOMP_PHILOX_H
#include <stdint.h>

#if defined(__CUDACC__)
#define GC_HD __host__ __device__ __forceinline__
#else
#define GC_HD static inline
#endif

typedef struct gc_u32x4 {
  uint32_t v[4];
} gc_u32x4;

GC_HD uint32_t gc_mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = (uint64_t)a * (uint64_t)b;
  *hi = (uint32_t)(p >> 32);
  return (uint32_t)p;
}

/* Ten rounds with the published multipliers and Weyl key increments. */
GC_HD gc_u32x4 gc_philox4x32_10(gc_u32x4 ctr, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    uint32_t lo0 = gc_mulhilo32(0xD2511F53u, ctr.v[0], &hi0);
    uint32_t lo1 = gc_mulhilo32(0xCD9E8D57u, ctr.v[2], &hi1);
    gc_u32x4 next;
    next.v[0] = hi1 ^ ctr.v[1] ^ k0;
    next.v[1] = lo1;
    next.v[2] = hi0 ^ ctr.v[3] ^ k1;
    next.v[3] = lo0;
    ctr = next;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return ctr;
}

/* The gradcomp stream: key = seed; counter = (block lo, block hi, step, tensor_id) where
 * block = element_index / 4, and element i takes word i % 4 of its block. */
GC_HD gc_u32x4 gc_philox_block(uint64_t seed, uint32_t step, uint32_t tensor_id, uint64_t block) {
  gc_u32x4 c;
  c.v[0] = (uint32_t)block;
  c.v[1] = (uint32_t)(block >> 32);
  c.v[2] = step;
  c.v[3] = tensor_id;
  return gc_philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32));
}

/* A uniform in [0, 1) with 24 random bits; exact in float32, identical on every device. */
GC_HD float gc_u24_to_unit(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

#endif /* GRADCOMP_PHILOX_H */
