{
  "targets": [
    {
      "target_name": "visiontune",
      "sources": ["src/addon.cc", "src/tensor.cc", "src/ops.cc", "src/runtime.cc", "src/distributed.cc", "src/bf16_activations.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node torch-config.cjs --include)"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++14"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-fopenmp", "-Wno-unused-parameter", "<!@(node torch-config.cjs --cflags)"],
      "ldflags": ["-fopenmp"],
      "libraries": ["<!@(node torch-config.cjs --libs)"]
    }
  ]
}
