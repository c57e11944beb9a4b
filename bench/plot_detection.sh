#!/bin/bash
# Detection-latency CDF from tickwire-loadgen --csv files, with the expected window
# [idle - ping, idle + tick + 50 ms] drawn as two vertical lines.
#
#   bench/plot_detection.sh OUT.png EXPECTED_MIN_MS EXPECTED_MAX_MS [LABEL=]FILE.csv ...
#
# Uses the rows 'detection' (app silence: measured by the client from the moment it
# went silent) and 'power_detection' (power silence: the server's own age from its
# detect line). Needs gnuplot (Debian: gnuplot-nox).
set -euo pipefail
if [ $# -lt 4 ]; then
	echo "usage: $0 OUT.png EXPECTED_MIN_MS EXPECTED_MAX_MS [LABEL=]FILE.csv ..." >&2
	exit 2
fi
out=$1 lo=$2 hi=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
plots=()
i=0
for arg in "$@"; do
	label=${arg%%=*} file=${arg#*=}
	[ "$label" = "$arg" ] && label=$(basename "$file" .csv)
	awk -F, '$1 == "detection" || $1 == "power_detection" { print $4 }' "$file" |
		sort -g | awk '{ v[NR] = $1 } END { for (i = 1; i <= NR; i++) print v[i], i / NR }' \
			>"$tmp/$i.dat"
	if [ -s "$tmp/$i.dat" ]; then
		plots+=("'$tmp/$i.dat' using 1:2 with steps lw 2 title '${label//\'/}'")
	fi
	i=$((i + 1))
done
if [ ${#plots[@]} -eq 0 ]; then
	echo "$0: no detection rows in the given files" >&2
	exit 1
fi
joined=$(IFS=,; echo "${plots[*]}")
gnuplot <<GP
set terminal pngcairo size 900,560 noenhanced
set output '$out'
set title 'tickwire: detection latency of silent clients (CDF)'
set xlabel 'detection latency (ms)'
set ylabel 'fraction of silent clients'
set yrange [0:1.05]
set key bottom right
set grid
set arrow from $lo, graph 0 to $lo, graph 1 nohead dt 2 lw 2 lc rgb '#c00000'
set arrow from $hi, graph 0 to $hi, graph 1 nohead dt 2 lw 2 lc rgb '#c00000'
set label 'expected min' at $lo, graph 1.02 center textcolor rgb '#c00000'
set label 'expected max' at $hi, graph 1.02 center textcolor rgb '#c00000'
set xrange [$lo - ($hi - $lo) * 0.3 : $hi + ($hi - $lo) * 0.3]
plot $joined
GP
echo "$out"
