{
  "targets": [
    {
      "target_name": "gradcomp",
      "sources": [
        "native/core/baselines.cc",
        "native/core/adacomp.cc",
        "native/core/cast.cc",
        "native/core/codec.cc",
        "native/core/cpu.cc",
        "native/core/dropit.cc",
        "native/core/dropit_unpack.cc",
        "native/core/gemm.cc",
        "native/core/optim.cc",
        "native/core/pool.cc",
        "native/core/powersgd.cc",
        "native/core/powersgd_recon.cc",
        "native/core/qsgd.cc",
        "native/core/qsgd_decode.cc",
        "native/core/qsgd_simd.cc",
        "native/core/rng.cc",
        "native/core/scratch.cc",
        "native/core/select.cc",
        "native/core/topk.cc",
        "native/core/topk_pass.cc",
        "native/core/vector.cc",
        "native/napi/addon.cc",
        "native/napi/ops_optim.cc",
        "native/napi/ops_powersgd.cc",
        "native/napi/ops_quant.cc",
        "native/napi/ops_runtime.cc",
        "native/napi/ops_select.cc",
        "native/napi/ops_vector.cc"
      ],
      "include_dirs": ["native/core/include"],
      "defines": [
        "NAPI_VERSION=8",
        "GC_ABI_VERSION=<!(node -p \"require('./package.json').gradcomp.abi\")"
      ],
      "cflags!": ["-fno-exceptions", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2"],
      "cflags": ["-O3", "-fvisibility=hidden", "-ffp-contract=off"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fvisibility=hidden", "-ffp-contract=off", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-maybe-uninitialized"],
      "conditions": [
        ["target_arch=='x64'", {
          "cflags": ["-march=x86-64-v2", "-mtune=generic"],
          "cflags_cc": ["-march=x86-64-v2", "-mtune=generic"]
        }]
      ]
    }
  ]
}
