{
  "targets": [
    {
      "target_name": "gradcomp_mpi",
      "sources": ["addon.cc", "engine.cc", "ring.cc"],
      "include_dirs": ["../core/include"],
      "defines": ["NAPI_VERSION=8", "OMPI_SKIP_MPICXX=1", "MPICH_SKIP_MPICXX=1",
                  "GC_ABI_VERSION=<!(node -p \"require('../../package.json').gradcomp.abi\")"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions", "-Wall", "<!@(mpicc --showme:compile)"],
      "libraries": ["<!@(mpicc --showme:link)"]
    }
  ]
}
