// Runtime CPU dispatch: the prebuilt binary targets x86-64-v2; AVX2 and AVX-512 paths are
// compiled with function-level target attributes and chosen here at run time.
#pragma once

namespace gradcomp {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// The best ISA this CPU supports, capped by set_max_isa (GRADCOMP_ISA env var at load time:
// "scalar", "avx2" or "avx512").
Isa active_isa();
void set_max_isa(Isa isa);
const char* isa_name(Isa isa);

}  // namespace gradcomp

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GC_X86 1
#define GC_TARGET_AVX2 __attribute__((target("avx2,fma,bmi,bmi2,popcnt")))
#define GC_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi,bmi2,popcnt")))
#else
#define GC_X86 0
#endif

// Elementwise kernels are written once as an inline body and compiled three times (baseline,
// AVX2, AVX-512: the compiler vectorizes the body for each target); GC_ISA_VARIANTS defines the
// three and `name##_run`, which picks one at run time. With -ffp-contract=off every variant does
// the same IEEE operations per element, so the results are identical on every ISA.
#if GC_X86
#define GC_ISA_VARIANTS(name, params, args)                           \
  GC_TARGET_AVX512 void name##_avx512 params { name##_body args; }    \
  GC_TARGET_AVX2 void name##_avx2 params { name##_body args; }        \
  void name##_base params { name##_body args; }                       \
  void name##_run params {                                            \
    switch (active_isa()) {                                           \
      case Isa::kAvx512: return name##_avx512 args;                   \
      case Isa::kAvx2: return name##_avx2 args;                       \
      default: return name##_base args;                               \
    }                                                                 \
  }
#else
#define GC_ISA_VARIANTS(name, params, args) \
  void name##_run params { name##_body args; }
#endif
