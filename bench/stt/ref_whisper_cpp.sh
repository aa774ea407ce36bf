#!/usr/bin/env bash
# Reference STT run with whisper.cpp's whisper-cli on one clip.
#
#   ref_whisper_cpp.sh GGML_MODEL.bin CLIP.wav
#
# Env: WHISPER_CLI (default /work/ref-stt/bin/whisper-cli), THREADS (2),
#      ENGINE_NAME (whisper.cpp), MODEL_NAME (derived from the file name).
# Runs greedy decoding (-bs 1 -bo 1), -l en, timestamps on, under
# /usr/bin/time -v, and prints one JSON object:
#   {engine, model, clip, audio_s, load_s, transcribe_s, rtf, rss_mb, text,
#    encode_s, decode_s, wall_s}
#   load_s       whisper-cli's "load time"
#   transcribe_s mel + sample + encode + decode + batchd + prompt times as
#                printed by whisper_print_timings (processing, excluding model
#                load, state allocation and wav reading)
#   rss_mb       "Maximum resident set size" from /usr/bin/time -v
set -euo pipefail
MODEL=${1:?usage: ref_whisper_cpp.sh GGML_MODEL.bin CLIP.wav}
CLIP=${2:?usage: ref_whisper_cpp.sh GGML_MODEL.bin CLIP.wav}
CLI=${WHISPER_CLI:-/work/ref-stt/bin/whisper-cli}
THREADS=${THREADS:-2}
ENGINE=${ENGINE_NAME:-whisper.cpp}
NAME=${MODEL_NAME:-$(basename "$MODEL" .bin)}; NAME=${NAME#ggml-}
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

/usr/bin/time -v -o "$TMP/time" "$CLI" -m "$MODEL" -f "$CLIP" -t "$THREADS" \
  -bs 1 -bo 1 -l en >"$TMP/out" 2>"$TMP/err"

python3 - "$TMP" "$ENGINE" "$NAME" "$CLIP" <<'PY'
import json, os, re, sys, wave
tmp, engine, model, clip = sys.argv[1:5]
out = open(os.path.join(tmp, "out"), encoding="utf-8", errors="replace").read()
err = open(os.path.join(tmp, "err"), encoding="utf-8", errors="replace").read()
tim = open(os.path.join(tmp, "time")).read()
def ms(label):
    m = re.search(r"whisper_print_timings:\s+%s time =\s+([0-9.]+) ms" % label, err)
    return float(m.group(1)) / 1000.0 if m else 0.0
with wave.open(clip, "rb") as w:
    audio_s = w.getnframes() / w.getframerate()
proc = sum(ms(k) for k in ("mel", "sample", "encode", "decode", "batchd", "prompt"))
texts = [re.sub(r"^\[[^\]]*\]\s*", "", l).strip() for l in out.splitlines() if l.startswith("[")]
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", tim).group(1))
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", tim).group(1)
wall_s = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
print(json.dumps({
    "engine": engine, "model": model, "clip": os.path.basename(clip),
    "audio_s": round(audio_s, 3), "load_s": round(ms("load"), 4),
    "transcribe_s": round(proc, 4), "rtf": round(proc / audio_s, 4),
    "rss_mb": round(rss_kb / 1024.0, 1), "text": " ".join(t for t in texts if t),
    "encode_s": round(ms("encode"), 4), "decode_s": round(ms("decode"), 4),
    "wall_s": round(wall_s, 3),
}))
PY
