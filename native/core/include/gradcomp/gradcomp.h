/* gradcomp C ABI shared by the CPU and CUDA builds: status codes, dtypes, op descriptors.
 * Only <stdint.h>/<stddef.h> may be included here (see DESIGN.md, "Layers"). */
#ifndef GRADCOMP_GRADCOMP_H
#define GRADCOMP_GRADCOMP_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes returned by every kernel entry. Native code never formats user-facing prose:
 * lib/native/errors.ts maps each code to a coded JS error. Keep the numbers stable. */
typedef enum gc_status {
  GC_OK = 0,
  GC_ERR_INVALID_ARG = 1,     /* an invariant TS should already have checked was violated */
  GC_ERR_CORRUPT_PAYLOAD = 2, /* a wire payload failed validation on decode */
  GC_ERR_OUT_OF_MEMORY = 3,   /* scratch allocation failed */
  GC_ERR_INTERNAL = 4,        /* a bug: an internal consistency check failed */
  GC_ERR_DEVICE = 5,          /* the CUDA runtime reported an error (its text travels with it) */
  GC_ERR_COMM = 6             /* the communication library (MPI) reported an error (its text travels with it) */
} gc_status;

typedef enum gc_dtype {
  GC_FLOAT32 = 0,
  GC_FLOAT64 = 1,
  GC_INT32 = 2,
  GC_UINT32 = 3,
  GC_UINT8 = 4
} gc_dtype;

/* Temporary memory an op needs, provided by its caller (the op reports the size beforehand). */
typedef struct gc_scratch {
  void* ptr;
  uint64_t bytes;
} gc_scratch;

/* Fused error-feedback top-k: acc = scale*grad + residual; select the k largest |acc|
 * (ties to the lower index; NaN ranks above +Inf, which ranks above every finite value);
 * out_idx/out_val get them in ascending index order; residual = acc with the winners zeroed.
 * grad == NULL means plain top-k of `residual` (read-only): topK(x, k). */
typedef struct gc_topk_desc {
  const float* grad;  /* may be NULL: plain top-k of `residual`, which is then not written */
  float* residual;    /* n floats; for plain top-k it is only read (const in spirit) */
  uint64_t n;
  uint64_t k;
  float scale;
  uint32_t* out_idx; /* k entries */
  float* out_val;    /* k entries */
  gc_scratch scratch; /* topk_scratch_bytes(n, k) bytes (CPU) */
} gc_topk_desc;

/* QSGD payload header: 24 bytes, little-endian, then ceil(n/bucket) float32 norms, then
 * ceil(n*bits/8) bytes of codes packed LSB-first. code = level | sign << (bits-1). */
#define GC_QSGD_MAGIC 0x53514347u /* "GCQS" read as a little-endian uint32 */
#define GC_QSGD_VERSION 1u
#define GC_QSGD_HEADER_BYTES 24u
#define GC_QSGD_MAX_LEVELS 32767u /* 16-bit codes at most */
typedef enum gc_qsgd_norm { GC_QSGD_NORM_MAX = 0, GC_QSGD_NORM_L2 = 1 } gc_qsgd_norm;

/* The 24-byte QSGD header as stored (little-endian hosts and devices). */
typedef struct gc_qsgd_header {
  uint32_t magic;
  uint8_t version, norm, bits, reserved;
  uint32_t levels;
  uint32_t bucket;
  uint64_t n;
} gc_qsgd_header;

typedef struct gc_qsgd_desc {
  const float* x;
  uint64_t n;
  uint32_t levels;      /* s >= 1 */
  uint32_t bucket_size; /* d >= 1 */
  gc_qsgd_norm norm;
  uint64_t seed;
  uint32_t step;
  uint32_t tensor_id;
  uint8_t* payload; /* gc_qsgd_payload_bytes(...) bytes */
  uint64_t payload_bytes;
} gc_qsgd_desc;

/* Bits per QSGD code: 1 sign bit + ceil(log2(levels + 1)) level bits. */
static inline uint32_t gc_qsgd_bits(uint32_t levels) {
  uint32_t b = 0;
  while ((1ULL << b) < (uint64_t)levels + 1) ++b;
  return b + 1;
}

static inline uint64_t gc_qsgd_payload_bytes(uint64_t n, uint32_t levels, uint32_t bucket) {
  const uint64_t buckets = bucket == 0 ? 0 : (n + bucket - 1) / bucket;
  return GC_QSGD_HEADER_BYTES + 4 * buckets + (n * gc_qsgd_bits(levels) + 7) / 8;
}

/* 1 when a header's fields are in range and consistent with a payload of `bytes` bytes. */
static inline int gc_qsgd_header_ok(const gc_qsgd_header* h, uint64_t bytes) {
  if (h->magic != GC_QSGD_MAGIC || h->version != GC_QSGD_VERSION || h->reserved != 0) return 0;
  if (h->norm > GC_QSGD_NORM_L2 || h->levels < 1 || h->levels > GC_QSGD_MAX_LEVELS || h->bucket < 1) return 0;
  if (h->bits != gc_qsgd_bits(h->levels) || h->n > 0xffffffffULL) return 0;
  return bytes == gc_qsgd_payload_bytes(h->n, h->levels, h->bucket);
}

/* PowerSGD: P = M Q (rows x rank), orthonormalize P's columns, Q = M^T P (cols x rank).
 * `batch` matrices of one shape are stored back to back in m, q and p. */
typedef struct gc_powersgd_desc {
  const float* m;
  float* q; /* in: cols x rank warm start; out: M^T P */
  float* p; /* out: rows x rank, orthonormal columns (zero columns where P was deficient) */
  uint64_t batch;
  uint64_t rows;
  uint64_t cols;
  uint32_t rank;
  gc_scratch scratch; /* powersgd_scratch_bytes(desc) bytes (CPU) */
} gc_powersgd_desc;

/* DropIT packed form: 24-byte header, then either a bitmap (ceil(n/8) bytes, rounded up to a
 * multiple of 4) or k uint32 indices, then k float32 values in ascending index order. */
#define GC_DROPIT_MAGIC 0x50444347u /* "GCDP" */
#define GC_DROPIT_VERSION 1u
#define GC_DROPIT_HEADER_BYTES 24u
typedef enum gc_dropit_layout { GC_DROPIT_BITMAP = 0, GC_DROPIT_INDICES = 1 } gc_dropit_layout;

/* The 24-byte DropIT header as stored. */
typedef struct gc_dropit_header {
  uint32_t magic;
  uint8_t version, layout;
  uint16_t reserved;
  uint64_t n;
  uint64_t k;
} gc_dropit_header;

/* The bitmap is ceil(n / 8) bytes rounded up to a multiple of 4 (the values stay aligned). */
static inline uint64_t gc_dropit_bitmap_bytes(uint64_t n) { return ((n + 7) / 8 + 3) & ~3ULL; }

/* Bitmap + values when smaller than uint32 indices + values (keep fraction above 1/32). */
static inline gc_dropit_layout gc_dropit_layout_for(uint64_t n, uint64_t k) {
  return gc_dropit_bitmap_bytes(n) < 4 * k ? GC_DROPIT_BITMAP : GC_DROPIT_INDICES;
}

static inline uint64_t gc_dropit_packed_bytes(uint64_t n, uint64_t k) {
  return GC_DROPIT_HEADER_BYTES + (gc_dropit_layout_for(n, k) == GC_DROPIT_BITMAP ? gc_dropit_bitmap_bytes(n) + 4 * k : 8 * k);
}

/* 1 when a header's fields are in range and consistent with a payload of `bytes` bytes. */
static inline int gc_dropit_header_ok(const gc_dropit_header* h, uint64_t bytes) {
  if (h->magic != GC_DROPIT_MAGIC || h->version != GC_DROPIT_VERSION || h->reserved != 0) return 0;
  if (h->n > 0xffffffffULL || h->k > h->n || h->layout != (uint8_t)gc_dropit_layout_for(h->n, h->k)) return 0;
  return bytes == gc_dropit_packed_bytes(h->n, h->k);
}

#ifdef __cplusplus
}
#endif
#endif /* GRADCOMP_GRADCOMP_H */
