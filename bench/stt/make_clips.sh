#!/usr/bin/env bash
# Synthesize the STT benchmark clips with espeak-ng (+ sox), 16 kHz mono s16 wav.
#
#   bench/stt/make_clips.sh OUTDIR
#
# Produces, from the sentences in bench/stt/clips.txt:
#   s2.wav    (~5 s)    s2 alone
#   s123.wav  (~14.6 s) s1 + 0.3 s silence + s2 + 0.3 s silence + s3
#   para.wav  (~70 s)   p01..p10 separated by 0.6 s silence
# and next to each a reference transcript NAME.txt (one line).
# Needs: espeak-ng, sox (apt-get install -y espeak-ng sox).
set -euo pipefail
OUT=${1:?usage: make_clips.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
CLIPS=$HERE/clips.txt
VOICE=${VOICE:-en-us}
SPEED=${SPEED:-150}
PAUSE=${PAUSE:-0.3}        # between s1/s2/s3
PARA_PAUSE=${PARA_PAUSE:-0.6}  # between paragraph sentences
mkdir -p "$OUT"
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

sentence() { awk -F'\t' -v id="$1" '$1==id {print $2}' "$CLIPS"; }

synth() {  # id -> $TMP/id.wav (16 kHz mono 16-bit)
  local text; text=$(sentence "$1")
  [ -n "$text" ] || { echo "no sentence $1 in $CLIPS" >&2; exit 1; }
  espeak-ng -v "$VOICE" -s "$SPEED" -w "$TMP/$1.raw.wav" "$text"
  sox -D "$TMP/$1.raw.wav" -r 16000 -c 1 -b 16 -e signed-integer "$TMP/$1.wav"
}

sox -D -n -r 16000 -c 1 -b 16 -e signed-integer "$TMP/pause.wav" trim 0 "$PAUSE"
sox -D -n -r 16000 -c 1 -b 16 -e signed-integer "$TMP/ppause.wav" trim 0 "$PARA_PAUSE"

join_clip() {  # pausefile name id... : concatenates with pauses, writes wav + txt
  local pause=$1 name=$2; shift 2
  local parts=() texts=() first=1
  for id in "$@"; do
    synth "$id"
    [ $first = 1 ] || parts+=("$pause")
    parts+=("$TMP/$id.wav"); texts+=("$(sentence "$id")"); first=0
  done
  if [ ${#parts[@]} = 1 ]; then cp "${parts[0]}" "$OUT/$name.wav"; else sox -D "${parts[@]}" "$OUT/$name.wav"; fi
  echo "${texts[*]}" > "$OUT/$name.txt"
  printf '%-6s %6.2f s  %s\n' "$name" "$(soxi -D "$OUT/$name.wav")" "$OUT/$name.wav"
}

join_clip "$TMP/pause.wav" s2 s2
join_clip "$TMP/pause.wav" s123 s1 s2 s3
join_clip "$TMP/ppause.wav" para p01 p02 p03 p04 p05 p06 p07 p08 p09 p10
