#!/bin/sh
# Build the native broker: build/midge-<board>.wasm (from `npm run build`) compiled ahead
# of time to C by wasm2c (Debian package wabt), then gcc -O2 with wabt's runtime
# (wasm-rt-impl.c). Output: build/native/midge-<board>.
#   sh host/native/build.sh [board]      (default: every board; CC, CFLAGS and WASM_RT_DIR may be set)
set -eu
cd "$(dirname "$0")/../.."
if [ $# -eq 0 ]; then # every board
  for f in boards/*.json; do sh "$0" "$(basename "$f" .json)"; done
  exit 0
fi
board=$1
out=build/native
wasm=build/midge-$board.wasm
. host/native/wasm2c-env.sh # checks; $rt and $inc: wabt's runtime sources

mkdir -p "$out/$board"
wasm2c "$wasm" -n midge -o "$out/$board/midge_core.c"

# The core's vocabulary (host/generated/vocab.h: counters, settings, options, the --help
# text), from its own sources, so this host cannot drift from it.
node scripts/vocab.mjs

version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' package.json | head -1)
cc=${CC:-gcc}
# Linux: guard pages and a signal handler check memory bounds (wasm2c's default), so the
# generated code carries no explicit checks.
flags="${CFLAGS:--O2} -I$out/$board -Ihost/native -Ihost/generated -I$rt -I$inc"
# generated and third-party C: their warnings are not ours to fix
$cc $flags -w -c -o "$out/$board/midge_core.o" "$out/$board/midge_core.c"
$cc $flags -w -c -o "$out/$board/wasm-rt-impl.o" "$rt/wasm-rt-impl.c"
$cc $flags -Wall -Wextra -Werror -DMIDGE_VERSION="\"$version\"" -DMIDGE_BOARD="\"$board\"" \
  -o "$out/midge-$board" host/native/main.c host/native/passwd.c host/native/persist.c host/native/tls.c "$out/$board/midge_core.o" "$out/$board/wasm-rt-impl.o" -lssl -lcrypto -lm
echo "build.sh: $out/midge-$board ($(wc -c < "$out/midge-$board") bytes)"
