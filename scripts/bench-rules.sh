#!/usr/bin/env bash
# The grading rules' evaluation cost: a kioskmon holding the last RULES_HISTORY
# (default 30m) of N simulated kiosks (RULES_KIOSKS, default "10000 100000";
# several sizes space-separated), the whole default rulebook evaluated for
# RULES_CYCLES cycles (default 10, one a simulated minute) through
# /api/v1/rules/backtest. Writes bench-results/rules.txt: seconds per cycle
# (p50 and max), kioskmon's CPU seconds per cycle (which other load on the
# machine does not inflate as it does the wall time), the costliest rules,
# kioskmon's peak RSS while ingesting and while evaluating, per fleet size.
#
# At RULES_VMALERT_KIOSKS (default 10000; "" skips) vmalert evaluates the
# exported rulebook over the same data and minutes through kioskmon's
# Prometheus query API (replay mode, one query at a time), beside kioskmon's own
# evaluator with one rule at a time and with its default concurrency. vmalert
# is $VMALERT, or on PATH, or built from the VictoriaMetrics module version in
# go.mod (needs the Go module proxy once).
#
# One kiosk-sim process keeps a queue file per kiosk open and this machine
# allows 20,000 open files a process: the fleet is spread over
# ceil(N / RULES_KIOSKS_PER_SIM) kiosk-sim shards (default 10000 kiosks each),
# run one after another over the same simulated minutes. Run at once, 100,000
# kiosks' senders time out against a server that takes 4 requests at a time
# and retry faster than it stores (tried: 1.5 M samples in 6 minutes).
#
# RULES_PROFILE=SECONDS writes a CPU profile of kioskmon from the start of the
# cycles to bench-results/rules-N.cpu.pprof (go tool pprof bin/kioskmon FILE).
#
# RULES_SERVE_FLAGS adds flags to kioskmon serve, for example
# --rules.condition-copies.disable to measure the rules reading every kiosk's
# series (a fleet ingested with copies keeps them; the flag stops their use).
#
# RULES_KEEP=1 keeps each ingested fleet in bench-results/rules-cache (by
# size, RULES_END, which it needs, and history) and reuses it on the next run.
#
# The simulated minutes end at RULES_END (RFC 3339; default: now). The
# simulator switches the kiosks of half the service halls off outside opening
# hours (weekdays 08:30-17:30 in the fleet's time zone, UTC+8), and they send
# nothing: a run at night has half the fleet reporting, a run ending on a
# weekday at 11:00 UTC+8 all of it. The results say how many kiosks reported.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${RULES_KIOSKS:-10000 100000}
cycles=${RULES_CYCLES:-10}
history=${RULES_HISTORY:-30m}
per_sim=${RULES_KIOSKS_PER_SIM:-10000}
vmalert_at=${RULES_VMALERT_KIOSKS-10000}
mkdir -p bin bench-results
go build -o bin/kioskmon ./cmd/kioskmon
go build -o bin/kiosk-sim ./cmd/kiosk-sim
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hwm() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user+system time, in clock ticks
tck=$(getconf CLK_TCK)
out=bench-results/rules.txt

# Everything this script starts is stopped on the way out, whatever happens.
pids=()
dirs=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	for d in "${dirs[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT
trap 'exit 143' INT TERM # a trapped signal ends the wait for a kiosk-sim at once, then cleans up

vmalert_bin() { # prints the binary, a tab, its version
	if [ -n "${VMALERT:-}" ]; then printf '%s\t%s\n' "$VMALERT" "$("$VMALERT" -version 2>&1 | head -1)"; return; fi
	if command -v vmalert >/dev/null; then printf '%s\t%s\n' "$(command -v vmalert)" "$(vmalert -version 2>&1 | head -1)"; return; fi
	local ver dir
	ver=$(go list -m -f '{{.Version}}' github.com/VictoriaMetrics/VictoriaMetrics)
	if [ ! -x "bin/vmalert-$ver" ]; then
		# A throwaway module: vmalert's own dependencies stay out of kioskmon's go.mod.
		dir=$(mktemp -d)
		printf 'module vmalertbuild\n\ngo 1.26\n\nrequire github.com/VictoriaMetrics/VictoriaMetrics %s\n' "$ver" >"$dir/go.mod"
		(cd "$dir" && GOFLAGS=-mod=mod go build -o "$OLDPWD/bin/vmalert-$ver" github.com/VictoriaMetrics/VictoriaMetrics/app/vmalert) >&2 || { rm -rf "$dir"; return 1; }
		rm -rf "$dir"
	fi
	printf '%s\t%s\n' "bin/vmalert-$ver" "$ver, built from the module"
}

caches() { # addr -> "type requests misses" lines of the storage caches a query goes through
	curl -fsS "http://$1/metrics" | awk -F'[{}"]' '
		/^vm_cache_(requests|misses)_total\{type="(storage\/tsid|storage\/metricName|indexdb\/tagFiltersToMetricIDs|indexdb\/dataBlocks|storage\/indexBlocks)"\}/ {
			split($0, f, " "); v[$3, ($1 ~ /requests/) ? "r" : "m"] = f[2]; t[$3] = 1 }
		END { for (k in t) print k, v[k, "r"] + 0, v[k, "m"] + 0 }'
}
cache_misses() { # before-file after-file -> "type misses/requests" for the cycles
	awk 'NR == FNR { r[$1] = $2; m[$1] = $3; next }
		{ dr = $2 - r[$1]; dm = $3 - m[$1]; if (dr > 0) { printf "%s%s %.0f of %.0f missed", sep, $1, dm, dr; sep = ", " } }' "$1" "$2"
}
backtest() { # addr from to [concurrency] -> JSON on stdout
	curl -fsS "http://$1/api/v1/rules/backtest?from=$2&to=$3&step=60s${4:+&concurrency=$4}"
}
summary() { # reads a backtest's JSON: "p50 max incidents" and the costliest rules
	python3 -c '
import json, statistics, sys
d = json.load(sys.stdin)["data"]
c = d["stats"]["cycleSeconds"]
rules = sorted(d["stats"]["ruleSeconds"].items(), key=lambda r: -r[1])[:5]
print("%.2f %.2f %d %s" % (statistics.median(c), max(c), len(d["incidents"]),
      ", ".join("%s %.2f" % (name, s / len(c)) for name, s in rules)))'
}

echo "rule evaluation, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(bin/kioskmon rules list | wc -l) rules, $history of history, $cycles cycles a minute apart" >"$out"
for n in $sizes; do
	end=${RULES_END:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
	if [ -n "${RULES_KEEP:-}" ]; then
		# The ingested fleet is kept for reruns of the same size, end and history.
		[ -n "${RULES_END:-}" ] || { echo "bench-rules: RULES_KEEP needs a fixed RULES_END" >&2; exit 2; }
		dir=bench-results/rules-cache/$n-$(date -u -d "$end" +%Y%m%dT%H%M%SZ)-$history
		mkdir -p "$dir"
	else
		dir=$(mktemp -d)
		dirs+=("$dir")
	fi
	addr=127.0.0.1:$(port)
	[ -f "$dir/ingested" ] || printf 'version: v1\nkiosks: []\n' >"$dir/inventory.yml"
	# Inspection off: its queries would run during the cycles and be counted in them.
	bin/kioskmon serve --listen "$addr" --data "$dir/data" --inventory "$dir/inventory.yml" --inventory.poll 1s \
		--rules.disable --inspection.disable --query.latency-offset 1ms ${RULES_SERVE_FLAGS:-} >/dev/null 2>"$dir/kioskmon.log" &
	server=$!
	pids+=("$server")
	for _ in $(seq 1 100); do curl -fsS "http://$addr/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
	shards=$(( (n + per_sim - 1) / per_sim ))
	t0=$(date +%s)
	if [ -f "$dir/ingested" ]; then
		echo "bench-rules: $n kiosks: the fleet ingested before is in $dir"
		shards=0
	else
		echo "bench-rules: $n kiosks: pushing $history simulated up to $end, $shards kiosk-sim shards one after another..."
	fi
	for k in $(seq 0 $((shards - 1))); do
		# The first shard writes the fleet into the inventory; the others read it.
		bin/kiosk-sim --kiosks "$n" --shard "$k/$shards" --inventory "$dir/inventory.yml" --push "http://$addr" \
			--speed 600 --duration "$history" --end "$end" --interval 60s --fault-rate 10 --progress 60s --drain-timeout 30m \
			--queue-dir "$dir/queues-$k" >"$dir/sim-$k.out" 2>"$dir/sim-$k.err" &
		sim=$!
		pids+=("$sim")
		wait "$sim" || { echo "kiosk-sim shard $k failed:"; grep -v 'push failed' "$dir/sim-$k.err" | tail; exit 1; }
		rm -rf "$dir/queues-$k"
		echo "bench-rules: $n kiosks: shard $((k + 1))/$shards delivered after $(( $(date +%s) - t0 )) s"
	done
	if [ -f "$dir/ingested" ]; then
		ingest_s=$(cat "$dir/ingested")
	else
		ingest_s=$(( $(date +%s) - t0 ))
		[ -z "${RULES_KEEP:-}" ] || echo "$ingest_s" >"$dir/ingested"
	fi
	curl -fsS -XPOST "http://$addr/internal/force_flush"
	ingest_rss=$(hwm "$server")
	# The storage's own count: a count() query over 10 million series costs more than the cycles.
	series=$(curl -fsS "http://$addr/metrics" | awk '$1 == "vm_new_timeseries_created_total" {print $2}')
	reporting=$(curl -fsS "http://$addr/api/v1/query" --data-urlencode "query=count(max by (kiosk) (last_over_time(kiosk_exporter_build_info[$history])))" \
		--data-urlencode "time=$end" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
	to=$(date -u -d "$end" +%s)
	from=$(( to - (cycles - 1) * 60 ))
	echo "bench-rules: $n kiosks ($reporting reporting, $series series, ingested in ${ingest_s}s): $cycles evaluation cycles..."
	echo 5 >"/proc/$server/clear_refs" # peak RSS from here on is the evaluation's
	load=$(cut -d' ' -f1 /proc/loadavg)
	cpu0=$(cpu "$server")
	caches "$addr" >"$dir/caches.before"
	if [ -n "${RULES_PROFILE:-}" ]; then # seconds of CPU profile from the start of the cycles
		curl -fsS -o "bench-results/rules-$n.cpu.pprof" "http://$addr/debug/pprof/profile?seconds=$RULES_PROFILE" &
		pids+=($!)
	fi
	read -r p50 worst incidents costly < <(backtest "$addr" "$from" "$to" | summary)
	caches "$addr" >"$dir/caches.after"
	cpu_s=$(awk -v a="$cpu0" -v b="$(cpu "$server")" -v t="$tck" -v c="$cycles" 'BEGIN {printf "%.2f", (b-a)/t/c}')
	eval_rss=$(hwm "$server")
	printf '%7d kiosks (%s reporting, %s series): %s s per evaluation cycle (p50; max %s s; %d cycles, rules one per CPU), %s CPU s per cycle; kioskmon peak RSS %s MiB while evaluating, %s MiB while ingesting; %d incidents; load average %s before\n' \
		"$n" "$reporting" "$series" "$p50" "$worst" "$cycles" "$cpu_s" "$eval_rss" "$ingest_rss" "$incidents" "$load" | tee -a "$out"
	echo "        costliest rules, s per cycle: $costly" | tee -a "$out"
	echo "        storage caches during the cycles: $(cache_misses "$dir/caches.before" "$dir/caches.after")" | tee -a "$out"
	if [ "$n" = "$vmalert_at" ]; then
		cpu0=$(cpu "$server")
		read -r seq_p50 seq_max seq_incidents _ < <(backtest "$addr" "$from" "$to" 1 | summary)
		cpu_s=$(awk -v a="$cpu0" -v b="$(cpu "$server")" -v t="$tck" -v c="$cycles" 'BEGIN {printf "%.2f", (b-a)/t/c}')
		printf '        kioskmon one rule at a time: %s s per cycle (p50; max %s s), %s CPU s per cycle; %d incidents\n' "$seq_p50" "$seq_max" "$cpu_s" "$seq_incidents" | tee -a "$out"
		if [ "$seq_incidents" != "$incidents" ]; then
			echo "bench-rules: one rule at a time found $seq_incidents incidents, concurrently $incidents: concurrency changed the outcome" >&2
			exit 1
		fi
		if vm=$(vmalert_bin); then
			IFS=$'\t' read -r vmalert vmalert_version <<<"$vm"
			rules="$dir/rules"
			bin/kioskmon rules export --out "$rules" >/dev/null
			sed -i 's/^\( *interval:\) 30s$/\1 60s/' "$rules"/*.yml # replay steps by the group interval: one step a cycle
			sink=$(port)
			# vmalert's replay writes the alerts' state somewhere: here, nowhere.
			python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0)); self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$sink" &
			pids+=($!)
			start=$(date +%s.%N)
			cpu0=$(cpu "$server")
			"$vmalert" -rule="$rules/*.yml" -datasource.url="http://$addr" -remoteWrite.url="http://127.0.0.1:$sink" \
				-replay.timeFrom="$(date -u -d "@$from" +%Y-%m-%dT%H:%M:%SZ)" -replay.timeTo="$(date -u -d "@$to" +%Y-%m-%dT%H:%M:%SZ)" \
				-replay.maxDatapointsPerQuery=1 -replay.rulesDelay=0 -replay.disableProgressBar \
				-httpListenAddr="127.0.0.1:$(port)" >"$dir/vmalert.log" 2>&1 || { tail "$dir/vmalert.log"; exit 1; }
			vm_end=$(date +%s.%N)
			awk -v s="$start" -v e="$vm_end" -v c="$cycles" -v v="$vmalert_version" -v a="$cpu0" -v b="$(cpu "$server")" -v t="$tck" 'BEGIN {
				printf "        vmalert (%s) replaying the exported rulebook through the query API, one query at a time: %.2f s per cycle (mean), kioskmon answering it %.2f CPU s per cycle\n", v, (e-s)/c, (b-a)/t/c }' | tee -a "$out"
		else
			echo "        vmalert: none on this machine and it could not be built; no comparison" | tee -a "$out"
		fi
	fi
	kill "$server"
	wait "$server" 2>/dev/null || true
	[ -n "${RULES_KEEP:-}" ] || rm -rf "$dir"
done
