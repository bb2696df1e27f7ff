{
  "targets": [
    {
      "target_name": "virtfs_native",
      "sources": ["native/virtfs.c"],
      "defines": ["_GNU_SOURCE", "NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "cflags!": ["-O3"]
    }
  ]
}
