#!/usr/bin/env bash
# Run every STT engine on every model x clip, N times each, and print a markdown
# table (median RTF / processing time, load time, peak RSS, WER).
#
#   bench/stt/compare.sh [OUTDIR]
#
# Env:
#   REF_DIR   /work/ref-stt   (holds clips/ models/ ggml/ venv/ bin/)
#   N         3               repetitions per (engine, model, clip)
#   MODELS    "tiny.en base"
#   CLIPS     "s2 s123 para"
#   ONLY      regex on engine names to run a subset (e.g. ONLY=whisper.cpp)
#   EXTRA_ENGINES  extra lines in the same "name|command" format as ENGINES below
#
# Each engine is one command line that prints a single JSON object with at least
# {audio_s, load_s, transcribe_s, rtf, rss_mb, text}. Placeholders:
#   {ct2}   CTranslate2 model dir   ($REF_DIR/models/whisper-MODEL)
#   {ggml}  whisper.cpp model file  ($REF_DIR/ggml/ggml-MODEL.bin)
#   {clip}  wav path                ($REF_DIR/clips/CLIP.wav)
#   {model} model name (tiny.en, base)
# Runs are interleaved (for each repetition every engine runs once, back to
# back) so that load changes on the machine hit all engines alike.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REF=${REF_DIR:-/work/ref-stt}
PY=${PY:-$REF/venv/bin/python}
N=${N:-3}
MODELS=${MODELS:-"tiny.en base"}
CLIPS=${CLIPS:-"s2 s123 para"}
OUT=${1:-$REF/results/$(date -u +%Y%m%dT%H%M%SZ)}

ENGINES=(
  "faster-whisper-int8|$PY $HERE/ref_faster_whisper.py --compute-type int8 {ct2} {clip}"
  "faster-whisper-float32|$PY $HERE/ref_faster_whisper.py --compute-type float32 {ct2} {clip}"
  "whisper.cpp|$HERE/ref_whisper_cpp.sh {ggml} {clip}"
  "hoosh|${HOOSH_STT_BENCH:-$HERE/../../target/release/examples/stt_bench} {ct2} {clip}"
)
if [ -n "${EXTRA_ENGINES:-}" ]; then
  while IFS= read -r line; do [ -n "$line" ] && ENGINES+=("$line"); done <<<"$EXTRA_ENGINES"
fi

mkdir -p "$OUT"
JSONL=$OUT/results.jsonl
: >"$JSONL"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p')"
  echo "nproc: $(nproc)"
  echo "uptime at start: $(uptime)"
} >"$OUT/env.txt"

for model in $MODELS; do
  for clip in $CLIPS; do
    for rep in $(seq 1 "$N"); do
      for spec in "${ENGINES[@]}"; do
        name=${spec%%|*}; cmd=${spec#*|}
        [[ -n "${ONLY:-}" && ! "$name" =~ $ONLY ]] && continue
        cmd=${cmd//\{ct2\}/$REF/models/whisper-$model}
        cmd=${cmd//\{ggml\}/$REF/ggml/ggml-$model.bin}
        cmd=${cmd//\{clip\}/$REF/clips/$clip.wav}
        cmd=${cmd//\{model\}/$model}
        load1=$(cut -d' ' -f1 /proc/loadavg)
        if json=$(bash -c "$cmd" 2>"$OUT/last.err" | tail -n 1) && [ -n "$json" ]; then
          python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(label=sys.argv[2], model=sys.argv[3], clip_id=sys.argv[4], rep=int(sys.argv[5]), load1=float(sys.argv[6])); print(json.dumps(d))' \
            "$json" "$name" "$model" "$clip" "$rep" "$load1" >>"$JSONL"
          echo "$name $model $clip #$rep: $(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("rtf", d["rtf"], "transcribe_s", d["transcribe_s"])' "$json") (load1 $load1)" >&2
        else
          echo "FAILED: $name $model $clip #$rep: $cmd" >&2; tail -n 5 "$OUT/last.err" >&2
        fi
      done
    done
  done
done
echo "uptime at end: $(uptime)" >>"$OUT/env.txt"

python3 "$HERE/summarize.py" "$JSONL" "$REF/clips" | tee "$OUT/table.md"
echo >&2; cat "$OUT/env.txt" >&2; echo "results in $OUT" >&2
