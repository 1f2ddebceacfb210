#!/usr/bin/env bash
# The scale benchmark of issue 7 (not a test): release builds of kubectl-meshup and the benchmark
# driver, then for 1,000 / 10,000 / 50,000 / 150,000 pods a generated cluster in a fake API server,
# and `kubectl meshup check` against `kubectl get nodes,pods -o json` and the floor; then plan,
# start-up and a 20-cluster fleet. Prints markdown (the figures in bench/RESULTS.md come from it).
#
#   scripts/bench.sh                                  # everything (about 10 minutes on 2 cores)
#   scripts/bench.sh --sizes 1000,10000 --fleet 5     # a quick look
#   KUBECTL=/path/to/kubectl scripts/bench.sh         # another kubectl
#
# Options: --sizes N,N,...  --fleet N (0 = skip)  --fleet-pods N  --reps N
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "bench.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }
exec cargo bench --bench scale -- "$@"
