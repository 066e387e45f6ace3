{
  "targets": [
    {
      "target_name": "gradcomp_mpi",
      "sources": ["mpi_backend.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "OMPI_SKIP_MPICXX=1", "MPICH_SKIP_MPICXX=1"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions", "<!@(mpicc --showme:compile)"],
      "libraries": ["<!@(mpicc --showme:link)"]
    }
  ]
}
