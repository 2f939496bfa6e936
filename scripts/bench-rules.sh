#!/usr/bin/env bash
# The grading rules' evaluation cost: a kioskmon holding the last 30 minutes of
# N simulated kiosks (RULES_KIOSKS, default "10000"; several sizes space-separated),
# the whole default rulebook evaluated for RULES_CYCLES cycles (default 10) through
# /api/v1/rules/backtest. Writes bench-results/rules.txt: seconds per cycle and
# kioskmon's peak RSS, per fleet size.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${RULES_KIOSKS:-10000}
cycles=${RULES_CYCLES:-10}
mkdir -p bin bench-results
go build -o bin/kioskmon ./cmd/kioskmon
go build -o bin/kiosk-sim ./cmd/kiosk-sim
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
out=bench-results/rules.txt
echo "rule evaluation, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(bin/kioskmon rules list | wc -l) rules" > "$out"
for n in $sizes; do
	dir=$(mktemp -d)
	addr=127.0.0.1:$(port)
	printf 'version: v1\nkiosks: []\n' > "$dir/inventory.yml"
	bin/kioskmon serve --listen "$addr" --data "$dir/data" --inventory "$dir/inventory.yml" --inventory.poll 1s \
		--rules.disable --query.latency-offset 1ms 2>"$dir/kioskmon.log" &
	server=$!
	for _ in $(seq 1 100); do curl -fsS "http://$addr/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
	echo "bench-rules: $n kiosks: pushing 30 simulated minutes..."
	bin/kiosk-sim --kiosks "$n" --inventory "$dir/inventory.yml" --push "http://$addr" --speed 600 --duration 30m \
		--interval 60s --fault-rate 10 --progress 30s --drain-timeout 30m >"$dir/sim.out" 2>"$dir/sim.err" || { tail "$dir/sim.err"; exit 1; }
	curl -fsS -XPOST "http://$addr/internal/force_flush"
	to=$(date -u +%s)
	from=$(( to - (cycles - 1) * 60 ))
	echo "bench-rules: $n kiosks: $cycles evaluation cycles..."
	start=$(date +%s.%N)
	incidents=$(curl -fsS "http://$addr/api/v1/rules/backtest?from=$from&to=$to&step=60s" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["incidents"]))')
	end=$(date +%s.%N)
	hwm=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
	series=$(curl -fsS "http://$addr/api/v1/query" --data-urlencode 'query=count({__name__=~"kiosk_.+"})' | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
	kill "$server"; wait "$server" 2>/dev/null || true
	rm -rf "$dir"
	awk -v n="$n" -v c="$cycles" -v s="$start" -v e="$end" -v h="$hwm" -v i="$incidents" -v ser="$series" 'BEGIN {
		printf "%7d kiosks (%d series): %.2f s per evaluation cycle (%d cycles), kioskmon peak RSS %.0f MiB, %d incidents\n", n, ser, (e-s)/c, c, h/1024, i }' | tee -a "$out"
done
