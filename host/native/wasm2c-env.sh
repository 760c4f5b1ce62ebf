# Sourced by both C builds (host/native/build.sh, boards/mcu/build.sh) with $wasm set:
# checks the core and wasm2c are there and finds wabt's runtime sources, setting
# $rt (wasm-rt-impl.c) and $inc (wasm-rt.h). WASM_RT_DIR overrides the search.
[ -f "$wasm" ] || { echo "build.sh: $wasm is missing: run npm run build first" >&2; exit 1; }
command -v wasm2c >/dev/null || { echo "build.sh: wasm2c not found (apt-get install wabt)" >&2; exit 1; }

# Debian ships them in /usr/share/wabt/wasm2c (and /usr/src/wasm2c)
rt=${WASM_RT_DIR:-}
for d in /usr/share/wabt/wasm2c /usr/src/wasm2c /usr/local/share/wabt/wasm2c; do
  [ -n "$rt" ] || { [ -f "$d/wasm-rt-impl.c" ] && rt=$d; } || true
done
[ -n "$rt" ] || { echo "build.sh: wasm-rt-impl.c not found; set WASM_RT_DIR" >&2; exit 1; }
inc=$rt
[ -f "$inc/wasm-rt.h" ] || inc=/usr/include
