{
  "targets": [
    {
      "target_name": "gradcomp",
      "sources": [
        "native/core/baselines.cc",
        "native/core/cast.cc",
        "native/core/cpu.cc",
        "native/core/dropit.cc",
        "native/core/pool.cc",
        "native/core/powersgd.cc",
        "native/core/qsgd.cc",
        "native/core/rng.cc",
        "native/core/scratch.cc",
        "native/core/select.cc",
        "native/core/topk.cc",
        "native/napi/addon.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/core/include"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
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
