#!/usr/bin/env bash
# How the regression gate's false-alarm and power figures in docs/regression-gate.md were measured:
# RUNS runs of scenarios/gate.toml with BINARY, each compared with the committed
# baseline as .ci/run does; prints how many failed the gate and which figures failed.
#
#   scripts/gate-proof.sh unchanged ./target/release/pingfleet 20
#   scripts/gate-proof.sh slower /tmp/pingfleet-with-a-regression 20 SOME_KNOB=300
#
# Extra VAR=VALUE arguments go into the run's environment (the deliberate
# regressions were switched that way in a throwaway build).
set -uo pipefail
name=$1 binary=$(realpath "$2") runs=$3
shift 3
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${GATE_PROOF_DIR:-/tmp/gate-proof}/$name
failed=0
for i in $(seq 1 "$runs"); do
    dir=$out/$i
    mkdir -p "$dir"
    (cd "$dir" && env "$@" "$binary" run "$repo/scenarios/gate.toml" > run.log 2>&1)
    result=$(ls "$dir"/results/gate/*.json | head -n 1)
    "$repo/target/release/pingfleet" compare "$repo/results/baselines/gate" "$result" --json \
        > "$dir/compare.json"
    case $? in
        0) ;;
        1) failed=$((failed + 1))
           python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print('run', sys.argv[2], [r['figure'] for r in d['figures'] if r['verdict'] == 'regression' and r['gated']])" "$dir/compare.json" "$i" ;;
        *) echo "run $i: could not compare" ;;
    esac
done
echo "$name: $failed of $runs runs failed the gate"
