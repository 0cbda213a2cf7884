#!/bin/bash
# cpu_per_op.sh — CPU time each process of a local cluster spends per operation of one `tarn bench` run.
# Throughput on a shared 2-core machine swings with whatever else runs; CPU per operation (user + system,
# from /proc/PID/stat before and after) moves much less, so it is what to compare between two builds.
#
#   tests/bench/cpu_per_op.sh BUILD_DIR CLUSTER_DIR OP CLIENTS SECONDS [more tarn bench flags]
#   e.g. tests/bench/cpu_per_op.sh build-rel /tmp/b put 64 5
#
# The cluster must be running (`BUILD_DIR/tarn cluster start --dir CLUSTER_DIR`); its nodes are found from
# the pids in CLUSTER_DIR/cluster.conf. Prints one line: ops, throughput, then microseconds of CPU per
# operation for each node (with its role) and for the bench client, then the latency line.
set -euo pipefail
if [ $# -lt 5 ]; then
    sed -n '2,10p' "$0" >&2
    exit 2
fi
build=$1 dir=$2 op=$3 clients=$4 seconds=$5
shift 5
extra=("$@")
tick=$(getconf CLK_TCK)
mapfile -t nodes < <(awk '$1 == "node" {print $2, $3}' "$dir/cluster.conf")  # "id pid"
[ ${#nodes[@]} -gt 0 ] || { echo "cpu_per_op: no nodes in $dir/cluster.conf" >&2; exit 1; }
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A before role
status=$("$build/tarn" status --dir "$dir")
for n in "${nodes[@]}"; do
    read -r id pid <<<"$n"
    before[$id]=$(cpu_of "$pid")
    role[$id]=$(echo "$status" | awk -v id="$id" '$1 == id {print $3}')
done
out=$( { /usr/bin/time -f "BENCHCPU %U %S" "$build/tarn" bench --dir "$dir" --op "$op" --clients "$clients" \
         --seconds "$seconds" "${extra[@]}"; } 2>&1 )
ops=$(echo "$out" | sed -n 's/.*ops \([0-9]*\).*/\1/p' | head -1)
tput=$(echo "$out" | sed -n 's/.*throughput \([0-9.]*\).*/\1/p' | head -1)
[ -n "$ops" ] && [ "$ops" -gt 0 ] || { echo "$out" >&2; exit 1; }
line="$op $clients clients: $ops ops, $tput ops/s; CPU us/op:"
for n in "${nodes[@]}"; do
    read -r id pid <<<"$n"
    after=$(cpu_of "$pid")
    line="$line node$id(${role[$id]}) $(awk -v d=$((after - before[$id])) -v t="$tick" -v n="$ops" 'BEGIN{printf "%.0f", d / t * 1e6 / n}')"
done
bench=$(echo "$out" | awk '/BENCHCPU/ {print $2 + $3}')
line="$line bench $(awk -v c="$bench" -v n="$ops" 'BEGIN{printf "%.0f", c * 1e6 / n}')"
echo "$line"
echo "$out" | grep latency
