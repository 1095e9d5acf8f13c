{
  "variables": { "cramlab_blas%": "<!(node -p \"process.env.CRAMLAB_BLAS_RESOLVED || 'builtin'\")" },
  "targets": [{
    "target_name": "cramlab_native",
    "sources": ["src/addon.cc", "src/kernels.c", "src/model.c", "src/llama.c", "src/gpt_neox.c", "src/olmo.c", "src/opt.c", "src/mamba.c", "src/cram.c"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
    "cflags": ["-O3", "-march=native", "-fno-math-errno", "-fopenmp"],
    "cflags_c": ["-std=c11"],
    "cflags_cc": ["-std=c++17", "-fexceptions"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions"],
    "ldflags": ["-fopenmp"],
    "conditions": [
      ["cramlab_blas=='openblas'", {
        "defines": ["CRAMLAB_BLAS_OPENBLAS"],
        "include_dirs": ["<!(node -p \"process.env.CRAMLAB_BLAS_INCLUDE || '/usr/include'\")"],
        "libraries": ["-lopenblas"]
      }],
      ["OS=='mac'", {
        "xcode_settings": { "GCC_ENABLE_CPP_EXCEPTIONS": "YES", "OTHER_CFLAGS": ["-O3"] }
      }],
      ["cramlab_blas=='accelerate'", {
        "defines": ["CRAMLAB_BLAS_ACCELERATE"],
        "libraries": ["-framework Accelerate"]
      }]
    ]
  }]
}
