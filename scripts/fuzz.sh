#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that takes outside bytes: runs each
# libFuzzer target in fuzz/ (bodies in crates/hoosh-fuzz) for SECONDS (default
# 120) and reports, per target, the inputs run, the coverage reached and the
# crashes found. Each crash, out-of-memory or timeout input is copied to
# crates/hoosh-fuzz/regressions/<target>/, where the stable test suite
# replays it from then on; the target's run stops at its first one.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 300 sse audit_rows
#
# cargo-fuzz wants nightly flags (-Z sanitizer); RUSTC_BOOTSTRAP=1 lets the
# stable toolchain take them. New inputs go to fuzz/target/work-corpus/, not
# to the committed corpus: FUZZ_MERGE=1 merges into fuzz/corpus/<target>/
# only those that add coverage (keep it small; `cargo fuzz cmin` trims it).
# The table of results is printed and kept in fuzz/target/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-120}"
shift || true
all=(sse ndjson multipart chat_request embeddings_request speech_request audio_container audit_rows config_toml)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1

cd fuzz
cargo fuzz build
mkdir -p target/work-corpus artifacts
report=target/report.md
{
  echo "| target | seconds | runs | execs/s | coverage (edges) | features | corpus | peak RSS MB | result |"
  echo "|---|---|---|---|---|---|---|---|---|"
} > "$report"

failed=0
for t in "${targets[@]}"; do
  work="target/work-corpus/$t"
  mkdir -p "$work" "artifacts/$t"
  log="target/fuzz-$t.log"
  echo "== $t: ${seconds}s"
  status=0
  cargo fuzz run "$t" "$work" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" >"$log" 2>&1 || status=$?
  final_stat() { grep -m1 "^stat::$1:" "$log" | awk '{print $2}'; }
  # The last status line: "#RUNS <kind> cov: N ft: N corp: N/..."
  last=$(grep -E '^#[0-9]+' "$log" | tail -n1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  result="no crash"
  if [ "$status" -ne 0 ]; then
    failed=1
    mkdir -p "../crates/hoosh-fuzz/regressions/$t"
    kept=()
    for a in artifacts/"$t"/crash-* artifacts/"$t"/oom-* artifacts/"$t"/timeout-* artifacts/"$t"/leak-*; do
      [ -e "$a" ] || continue
      cp "$a" "../crates/hoosh-fuzz/regressions/$t/"
      kept+=("$(basename "$a")")
    done
    panic=$(grep -v 'contained decoder panic' "$log" | grep -m1 -A1 'panicked at' | tr '\n' ' ' || true)
    error=$(grep -m1 -E 'ERROR: (libFuzzer|AddressSanitizer)' "$log" | sed 's/^==[0-9]*== *//' || true)
    reason="${panic}${error:-exit $status}"
    result="FAILED (${kept[*]:-no artifact}): ${reason//|/\\|}"
  fi
  echo "| $t | $seconds | $(final_stat number_of_executed_units) | $(final_stat average_exec_per_sec) | ${cov:-?} | ${ft:-?} | ${corp:-?} | $(final_stat peak_rss_mb) | $result |" >> "$report"
  contained=$(grep -c 'contained decoder panic' "$log" || true)
  if [ "$contained" -gt 0 ]; then
    echo "   $contained decoder panic sites contained by decode's catch_unwind (see fuzz/$log)"
  fi
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    cargo fuzz run "$t" "corpus/$t" "$work" -- -merge=1 >"target/merge-$t.log" 2>&1
  fi
done

echo
cat "$report"
exit "$failed"
