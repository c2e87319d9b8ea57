#!/bin/bash
# Run every target of fuzz_vcalc.py in turn, one fuzzing process at a time.
#   PYTHON=/tmp/venv-fuzz/bin/python SECONDS_PER_TARGET=420 bash fuzz/run_campaign.sh [targets...]
# Corpora in /tmp/fuzz-corpus/<target>, crash/timeout inputs in
# /tmp/fuzz-artifacts/<target>/, logs in /tmp/fuzz-logs/<target>.N.log,
# Python-level findings in /tmp/fuzz-findings/<target>/.  A run that stops
# early (a crash or a hang) is restarted for the rest of the target's time.
set -u
PYTHON=${PYTHON:-python}
PER=${SECONDS_PER_TARGET:-420}
HERE=$(cd "$(dirname "$0")" && pwd)
TARGETS=${*:-reductions quadratic finite_diff raw}
for t in $TARGETS; do
  mkdir -p /tmp/fuzz-corpus/$t /tmp/fuzz-artifacts/$t /tmp/fuzz-logs
  start=$(date +%s); i=0
  while :; do
    left=$(( PER - ($(date +%s) - start) ))
    [ $left -le 5 ] && break
    i=$((i + 1))
    "$PYTHON" "$HERE/fuzz_vcalc.py" --target $t /tmp/fuzz-corpus/$t \
      -max_total_time=$left -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
      -artifact_prefix=/tmp/fuzz-artifacts/$t/ > /tmp/fuzz-logs/$t.$i.log 2>&1
    echo "$t run $i rc=$? after $(( $(date +%s) - start ))s"
  done
done
