{
  "targets": [
    {
      "target_name": "ambit_native",
      "sources": ["native/ambit_native.c"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
