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
