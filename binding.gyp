{
  "targets": [
    {
      "target_name": "posix_ipc",
      "sources": [
        "native/addon.cc",
        "native/core/errors.cc",
        "native/core/safe-open.cc",
        "native/core/wait.cc",
        "native/core/uring.cc",
        "native/sync/semaphore.cc",
        "native/sync/robust.cc",
        "native/sync/segment.cc",
        "native/sync/weblocks.cc",
        "native/mq/mq.cc",
        "native/shm/shm.cc",
        "native/pipe/pipe.cc",
        "native/ring/ring.cc"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags!": ["-fno-exceptions", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-O2"],
      "cflags": ["-O3", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "cflags_cc": ["-std=c++17", "-O3", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "libraries": ["-lrt", "-lpthread"],
      "conditions": [
        ["OS=='linux'", {
          "defines": ["PIPC_HAVE_MQ=1"]
        }, {
          "sources!": ["native/mq/mq.cc"],
          "defines": ["PIPC_HAVE_MQ=0"]
        }]
      ],
      "configurations": {
        "Debug": {
          "cflags": ["-O0", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer"],
          "cflags_cc": ["-O0", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer"],
          "ldflags": ["-fsanitize=address,undefined"]
        }
      }
    }
  ]
}
