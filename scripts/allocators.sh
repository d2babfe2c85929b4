#!/usr/bin/env bash
# How the allocator comparison in docs/measurements.md was measured: for each allocator,
# capacity-100k at 20,000 and at 60,000 TLS devices (10 s holds), and the slope of the
# server's and the workers' RSS and live heap over the devices parked between the two
# (what each allocator adds per parked connection, the fixed costs dropping out).
#
#   cargo build --release
#   CARGO_TARGET_DIR=target-mimalloc cargo build --release --features mimalloc
#   CARGO_TARGET_DIR=target-jemalloc cargo build --release --features jemalloc
#   scripts/allocators.sh glibc target/release/pingfleet \
#       glibc-arena1 target/release/pingfleet \
#       mimalloc target-mimalloc/release/pingfleet \
#       jemalloc target-jemalloc/release/pingfleet
#
# A name ending in -arena1 runs glibc with one malloc arena (GLIBC_TUNABLES).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${ALLOCATORS_DIR:-/tmp/allocators}
mkdir -p "$out"
printf '%-14s %14s %14s %14s %14s\n' allocator "server RSS/dev" "server heap" "devices RSS" "devices heap"
while [ $# -ge 2 ]; do
    name=$1 binary=$(realpath "$2")
    shift 2
    tunables=
    case $name in *-arena1) tunables=glibc.malloc.arena_max=1 ;; esac
    for devices in 20000 60000; do
        dir=$out/$name/$devices
        mkdir -p "$dir"
        (cd "$dir" && GLIBC_TUNABLES=$tunables "$binary" run "$repo/scenarios/capacity-100k.toml" \
            --devices "$devices" --duration 10s > run.log 2>&1) || true
    done
    python3 - "$name" "$out/$name" <<'EOF'
import glob, json, sys
name, base = sys.argv[1], sys.argv[2]
def memory(devices):
    [path] = glob.glob(f"{base}/{devices}/results/*.json")
    return json.load(open(path))["memory"]
small, large = memory(20000), memory(60000)
parked = large["parked_at_plateau"] - small["parked_at_plateau"]
def slope(key):
    return (large[key] - small[key]) / parked
print(f"{name:<14} {slope('server_rss_plateau_bytes'):14.0f} {slope('server_heap_plateau_bytes'):14.0f} "
      f"{slope('worker_rss_plateau_bytes'):14.0f} "
      f"{(large['device_heap_bytes_per_device'] * large['parked_at_plateau'] - small['device_heap_bytes_per_device'] * small['parked_at_plateau']) / parked:14.0f}")
EOF
done
