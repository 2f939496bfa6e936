#!/usr/bin/env bash
# make bench: sustained ingest over HTTP on this machine, for kioskmon (auth and
# write-ahead log on, default limits) and, in the same run, its peers: Debian's
# victoria-metrics (single node) and prometheus (remote-write receiver). Each
# (target, protocol, shape) gets a fresh data directory. Results go to
# bench-results/results.json and bench-results/results.md.
#
#   BENCH_DURATION=30s   measured time of each run (after BENCH_WARMUP)
#   BENCH_WARMUP=10s     sent, not measured: covers creating every series
#   BENCH_KIOSKS=5000    simulated kiosks (60 series each)
#   BENCH_CONCURRENCY=64 connections
#   BENCH_DATASET_KIOSKS=200 BENCH_DATASET_POINTS=2880   the on-disk size data set
#   BENCH_QUICK=1        a few seconds each, to check the script
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_QUICK:-}" = 1 ]; then
	: "${BENCH_DURATION:=3s}" "${BENCH_WARMUP:=2s}" "${BENCH_KIOSKS:=500}" "${BENCH_DATASET_KIOSKS:=20}" "${BENCH_DATASET_POINTS:=240}"
fi
DURATION=${BENCH_DURATION:-30s}
WARMUP=${BENCH_WARMUP:-10s}
KIOSKS=${BENCH_KIOSKS:-5000}
CONC=${BENCH_CONCURRENCY:-64}
DS_KIOSKS=${BENCH_DATASET_KIOSKS:-200}
DS_POINTS=${BENCH_DATASET_POINTS:-2880}
PORT=${BENCH_PORT:-18428}
URL=http://127.0.0.1:$PORT

bash scripts/install-deps.sh bench
go build -o bin/ ./cmd/kioskmon ./cmd/ingest-bench

out=bench-results
work=$(mktemp -d /tmp/kioskmon-bench.XXXXXX)
mkdir -p "$out"
server_pid=""
cleanup() {
	stop_server
	rm -rf "$work"
}
trap cleanup EXIT

stop_server() {
	[ -n "$server_pid" ] || return 0
	kill -TERM "$server_pid" 2>/dev/null || true
	for _ in $(seq 1 600); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
}

bin/ingest-bench --inventory-out "$work/inventory.yml" --kiosks "$((KIOSKS > DS_KIOSKS ? KIOSKS : DS_KIOSKS))"

# start_server TARGET DATADIR: starts a fresh server and waits until it answers.
start_server() {
	local target=$1 data=$2 ready
	rm -rf "$data"
	mkdir -p "$data"
	case "$target" in
	kioskmon | kioskmon-nowal)
		local extra=""
		[ "$target" = kioskmon-nowal ] && extra=--wal.disable
		bin/kioskmon serve --listen "127.0.0.1:$PORT" --data "$data" --inventory "$work/inventory.yml" --log.level warn $extra \
			>"$work/$target.log" 2>&1 &
		ready=/readyz ;;
	victoria-metrics)
		victoria-metrics -storageDataPath "$data" -httpListenAddr "127.0.0.1:$PORT" -loggerLevel WARN >"$work/$target.log" 2>&1 &
		ready=/health ;;
	prometheus)
		printf 'global: {}\n' >"$work/prometheus.yml"
		prometheus --config.file "$work/prometheus.yml" --storage.tsdb.path "$data" --web.listen-address "127.0.0.1:$PORT" \
			--web.enable-remote-write-receiver --log.level warn >"$work/$target.log" 2>&1 &
		ready=/-/ready ;;
	esac
	server_pid=$!
	for _ in $(seq 1 600); do
		curl -fs "$URL$ready" >/dev/null 2>&1 && return 0
		kill -0 "$server_pid" 2>/dev/null || { echo "bench: $target exited at start:"; tail -20 "$work/$target.log"; exit 1; }
		sleep 0.1
	done
	echo "bench: $target not ready after 60s"; exit 1
}

peak_rss() { awk '/VmHWM/ {print $2 * 1024}' "/proc/$server_pid/status" 2>/dev/null || echo 0; }

auth_for() { case "$1" in kioskmon*) echo basic ;; *) echo none ;; esac; }

results=()
run_case() {
	local target=$1 protocol=$2 shape=$3
	echo "== $target $protocol $shape"
	start_server "$target" "$work/data-$target"
	local json="$work/$target-$protocol-$shape.json"
	bin/ingest-bench --url "$URL" --auth "$(auth_for "$target")" --protocol "$protocol" --shape "$shape" \
		--kiosks "$KIOSKS" --concurrency "$CONC" --duration "$DURATION" --warmup "$WARMUP" --out "$json"
	local rss
	rss=$(peak_rss)
	stop_server
	results+=("$(jq -c --arg t "$target" --argjson rss "$rss" '. + {target: $t, peak_rss_bytes: $rss}' "$json")")
}

# bytes_per_sample TARGET: writes a kiosk-like data set (DS_KIOSKS kiosks x 60
# series x DS_POINTS points 15 s apart), flushes, stops the server and divides
# the storage's size on disk (caches excluded) by the samples stored.
bytes_per_sample() {
	local target=$1 data="$work/ds-$1"
	echo "== $target on-disk size of $DS_KIOSKS kiosks x 60 series x $DS_POINTS points"
	start_server "$target" "$data"
	local total=$((DS_KIOSKS * 60 * DS_POINTS))
	bin/ingest-bench --url "$URL" --auth "$(auth_for "$target")" --protocol remote-write --shape backlog \
		--kiosks "$DS_KIOSKS" --backlog-samples 9960 --concurrency 8 --warmup 0s --duration 30m --max-samples "$total" \
		--out "$work/ds-$target.json"
	curl -fs "$URL/internal/force_flush" >/dev/null || true
	sleep 2
	stop_server
	local samples bytes
	samples=$(jq .samples "$work/ds-$target.json")
	bytes=$(du -sb --exclude=cache --exclude=tmp --exclude=wal --exclude=snapshots "$data" | cut -f1)
	results+=("$(jq -cn --arg t "$target" --argjson s "$samples" --argjson b "$bytes" \
		'{target: $t, protocol: "remote-write", shape: "dataset", samples: $s, disk_bytes: $b, bytes_per_sample: ($b / $s)}')")
}

command -v jq >/dev/null || { apt-get install -y -qq jq >/dev/null 2>&1 || { echo "bench: needs jq"; exit 1; }; }

for shape in live backlog; do
	for protocol in remote-write influx; do
		for target in kioskmon kioskmon-nowal victoria-metrics prometheus; do
			[ "$target" = prometheus ] && [ "$protocol" = influx ] && continue
			run_case "$target" "$protocol" "$shape"
		done
	done
done
for target in kioskmon victoria-metrics; do
	bytes_per_sample "$target"
done

printf '%s\n' "${results[@]}" | jq -s --arg d "$(date -u +%FT%TZ)" --arg host "$(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB" \
	'{date: $d, machine: $host, method: {kiosks: '"$KIOSKS"', concurrency: '"$CONC"', duration: "'"$DURATION"'", warmup: "'"$WARMUP"'"}, results: .}' \
	>"$out/results.json"

jq -r '
  def rate($t; $p; $s): (.results[] | select(.target == $t and .protocol == $p and .shape == $s) | .samples_per_sec) // null;
  def fmt: if . == null then "n/a" else (. | floor | tostring) end;
  def ratio($a; $b): if $a == null or $b == null or $b == 0 then "n/a" else (($a / $b * 100 | floor) / 100 | tostring) + "x" end;
  "| protocol | shape | kioskmon samples/s | p50 / p99 ms | peak RSS MiB | kioskmon without WAL | victoria-metrics | prometheus | vs VM | vs Prometheus |",
  "|---|---|---|---|---|---|---|---|---|---|",
  ( . as $r | [["remote-write","live"],["remote-write","backlog"],["influx","live"],["influx","backlog"]][] as [$p,$s]
    | ($r.results[] | select(.target == "kioskmon" and .protocol == $p and .shape == $s)) as $k
    | "| \($p) | \($s) | \($k.samples_per_sec | floor) | \($k.p50_ms) / \($k.p99_ms) | \($k.peak_rss_bytes / 1048576 | floor) | \($r | rate("kioskmon-nowal"; $p; $s) | fmt) | \($r | rate("victoria-metrics"; $p; $s) | fmt) | \($r | rate("prometheus"; $p; $s) | fmt) | \(ratio($k.samples_per_sec; ($r | rate("victoria-metrics"; $p; $s)))) | \(ratio($k.samples_per_sec; ($r | rate("prometheus"; $p; $s)))) |"),
  "",
  "| target | samples stored | bytes on disk | bytes/sample |",
  "|---|---|---|---|",
  (.results[] | select(.shape == "dataset") | "| \(.target) | \(.samples) | \(.disk_bytes) | \(.bytes_per_sample * 1000 | floor / 1000) |")
' "$out/results.json" >"$out/results.md"
cat "$out/results.md"
