#!/bin/sh
# Build the no-JavaScript broker: build/midge-mcu.wasm (from `npm run build`) compiled
# ahead of time to C by wasm2c (Debian package wabt), then gcc with wabt's small
# runtime (wasm-rt-impl.c). Output: build/mcu-c/midge-mcu.
#   sh boards/mcu/build.sh            (CC, CFLAGS and WASM_RT_DIR may be set)
set -eu
cd "$(dirname "$0")/../.."
out=build/mcu-c
wasm=build/midge-mcu.wasm
. host/native/wasm2c-env.sh # checks; $rt and $inc: wabt's runtime sources

# the board's limits the host needs: connection slots; the output buffer holds a
# whole packet plus the backlog above which the core drops QoS 0 messages
limit() { grep -o "\"$1\": *[0-9]*" boards/mcu.json | grep -o '[0-9]*$'; }
conns=$(limit MAX_CONNECTIONS)
outbuf=$(( $(limit PACKET_MAX) + $(limit BACKLOG_MAX) + 1024 ))

mkdir -p "$out"
node scripts/vocab.mjs # host/generated/vocab.h: the core's vocabulary (log levels, ...)
wasm2c "$wasm" -n midge -o "$out/midge_core.c"
# No signal handler or guard pages: explicit bounds checks and a calloc'ed 64 KiB
# memory, as on a microcontroller.
cc=${CC:-gcc}
# sections + --gc-sections: drops what the core does not use, such as wasm-rt-impl.c's
# 64 KiB exception buffer (the core throws no WebAssembly exceptions)
flags="${CFLAGS:--Os} -ffunction-sections -fdata-sections -DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0 -I$out -Ihost/native -Ihost/generated -I$rt -I$inc"
# generated and third-party C: their warnings are not ours to fix
$cc $flags -w -c -o "$out/midge_core.o" "$out/midge_core.c"
$cc $flags -w -c -o "$out/wasm-rt-impl.o" "$rt/wasm-rt-impl.c"
$cc $flags -Wall -Wextra -Werror \
  -DMIDGE_MAX_CONNECTIONS="$conns" -DMIDGE_OUT_BUFFER="$outbuf" \
  -Wl,--gc-sections -o "$out/midge-mcu" boards/mcu/main.c "$out/midge_core.o" "$out/wasm-rt-impl.o" -lm
strip -o "$out/midge-mcu.stripped" "$out/midge-mcu" 2>/dev/null || cp "$out/midge-mcu" "$out/midge-mcu.stripped"
echo "build.sh: $out/midge-mcu ($(wc -c < "$out/midge-mcu.stripped") bytes stripped; connection slots $conns, output buffer $outbuf bytes each)"
