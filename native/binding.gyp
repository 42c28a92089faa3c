{
  "targets": [
    {
      "target_name": "visiontune",
      "sources": ["src/addon.cc", "src/tensor.cc", "src/ops.cc", "src/runtime.cc", "src/distributed.cc", "src/bf16_activations.cc", "src/large_blocks.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node torch-config.cjs --include)"
      ],
      # Node-API's experimental version with basic finalizers only: a tensor handle's finalizer then
      # runs inside the garbage collection that found it dead, instead of waiting in a queue for the
      # next turn of the event loop, which a synchronous training loop never gives (about 20 KB a
      # step piled up there over 1,000 steps of a small CNN).
      "defines": ["NAPI_VERSION=2147483647", "NODE_ADDON_API_REQUIRE_BASIC_FINALIZERS", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++14"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-fopenmp", "-Wno-unused-parameter", "<!@(node torch-config.cjs --cflags)"],
      "ldflags": ["-fopenmp"],
      "libraries": ["<!@(node torch-config.cjs --libs)"]
    }
  ]
}
