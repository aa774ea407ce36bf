#!/usr/bin/env bash
# Build whisper.cpp's `whisper-cli` (CPU only, Release) outside the repo.
#
#   bench/stt/build_whisper_cpp.sh [REF_DIR]        (default REF_DIR=/work/ref-stt)
#
# Source of the library: the whisper.cpp copy vendored in the crates.io crate
# whisper-rs-sys 0.15.0 (whisper.cpp 1.8.3) -- the same C++ that hoosh would get
# through whisper-rs. That crate ships only include/ src/ ggml/ cmake/ and no
# examples/, so the CLI sources (examples/) are taken from the full whisper.cpp
# 1.8.5 tree inside the PyPI sdist pywhispercpp==1.5.1 (cli.cpp only uses API
# that exists in 1.8.3). Set WHISPER_SRC=pywhispercpp to build the 1.8.5 tree
# as-is instead.
#
# Result: $REF_DIR/bin/whisper-cli  (symlink to the chosen build)
set -euo pipefail
REF=${1:-/work/ref-stt}
VARIANT=${WHISPER_SRC:-whisper-rs-sys}
JOBS=${JOBS:-2}
mkdir -p "$REF/src" "$REF/sdist" "$REF/bin"
cd "$REF/src"

CRATE=whisper-rs-sys-0.15.0.crate
if [ ! -f "$CRATE" ]; then
  # crates.io's API host is not reachable here; the static download host is.
  curl -sSfL -o "$CRATE" https://static.crates.io/crates/whisper-rs-sys/$CRATE \
    || curl -sSfL -o "$CRATE" https://crates.io/api/v1/crates/whisper-rs-sys/0.15.0/download
fi
echo "6986c0fe081241d391f09b9a071fbcbb59720c3563628c3c829057cf69f2a56f  $CRATE" | sha256sum -c
[ -d whisper-rs-sys-0.15.0 ] || tar xzf "$CRATE"

SDIST=$REF/sdist/pywhispercpp-1.5.1.tar.gz
SDIST_SHA=5df897e5dd9d9f16804fc937bd85b9f5880a0b29a55f8843585e0e03d76195e5
if [ ! -f "$SDIST" ]; then
  # `pip download --no-binary` would try to build the sdist's build deps
  # (cmake, ninja) from source; fetch the file that pip's index points to.
  url=$(curl -sSf https://pypi.org/simple/pywhispercpp/ | grep -o 'https://[^"#]*pywhispercpp-1\.5\.1\.tar\.gz' | head -1)
  curl -sSfL -o "$SDIST" "$url"
fi
echo "$SDIST_SHA  $SDIST" | sha256sum -c
[ -d pywhispercpp-1.5.1 ] || tar xzf "$SDIST"

case "$VARIANT" in
  whisper-rs-sys)
    TREE=$REF/src/whisper.cpp-1.8.3-rs
    if [ ! -d "$TREE" ]; then
      cp -r whisper-rs-sys-0.15.0/whisper.cpp "$TREE"
      cp -r pywhispercpp-1.5.1/whisper.cpp/examples "$TREE/examples"
      # examples/common-ggml.cpp (quantize helpers, linked into every example)
      # names two ggml types that are newer than the crate's ggml: drop those
      # case labels. Nothing else differs in what whisper-cli uses.
      sed -i -E '/case GGML_(FTYPE_MOSTLY|TYPE)_(NVFP4|Q1_0):/d' "$TREE/examples/common-ggml.cpp"
    fi ;;
  pywhispercpp)
    TREE=$REF/src/pywhispercpp-1.5.1/whisper.cpp ;;
  *) echo "unknown WHISPER_SRC=$VARIANT" >&2; exit 2 ;;
esac

BUILD=$TREE/build
nice -n 10 cmake -S "$TREE" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DWHISPER_BUILD_EXAMPLES=ON -DWHISPER_BUILD_TESTS=OFF \
  -DWHISPER_BUILD_SERVER=OFF -DWHISPER_SDL2=OFF -DWHISPER_CURL=OFF -DWHISPER_FFMPEG=OFF \
  -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_BLAS=OFF
time nice -n 10 cmake --build "$BUILD" --config Release -j "$JOBS" --target whisper-cli
ln -sf "$BUILD/bin/whisper-cli" "$REF/bin/whisper-cli"
"$REF/bin/whisper-cli" --help 2>&1 | head -3 || true
echo "built $REF/bin/whisper-cli from $TREE"
