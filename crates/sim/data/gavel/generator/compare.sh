#!/usr/bin/env bash
# Replays Gavel's continuous-single job stream on 36 V100 + 36 P100 + 36 K80 and prints the mean
# JCT of jobs 4000-4999 (Gavel's measurement window, `run_sweep_continuous.py -s 4000 -e 5000`)
# per policy and arrival rate, in hours, as docs/simulation.md tabulates it.
#
# usage: compare.sh <suanli binary> <out dir> [rates (jobs/h)...]   (default rates: 2.0 4.0 4.8 5.6)
set -euo pipefail
bin=${1:?suanli binary}
out=${2:?output directory}
shift 2
rates=${*:-2.0 4.0 4.8 5.6}
here=$(cd "$(dirname "$0")" && pwd)
policies=gavel-max-min-fairness,gavel-max-min-fairness-hetero,gavel-finish-time-fairness,gavel-finish-time-fairness-hetero
mkdir -p "$out"
for rate in $rates; do
  trace="$out/continuous-single-rate$rate-seed0.trace"
  python3 "$here/generate_continuous.py" --rate "$rate" --seed 0 --jobs 6000 > "$trace"
  # Gavel's simulator charges no restart cost for a preemption or a move between types.
  /usr/bin/time -f "rate $rate: %e s wall, %M KB peak" \
    "$bin" simulate --cluster gavel-36-36-36 --trace "$trace" --trace-format gavel \
      --compare "$policies" --restart-delay 0s --out "$out/rate$rate" > "$out/rate$rate.txt"
  for policy in ${policies//,/ }; do
    awk -F, -v rate="$rate" -v policy="$policy" '
      NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
      $col["id"] >= 4000 && $col["id"] < 5000 { sum += $col["jct_s"]; n++ }
      END { printf "%s\t%s\t%d\t%.2f\n", rate, policy, n, sum / n / 3600 }
    ' "$out/rate$rate/jobs-$policy.csv"
  done
done
