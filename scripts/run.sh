#!/usr/bin/env bash
# make run: the kioskmon server on its embedded defaults (grading rules on;
# ALERTMANAGER="http://127.0.0.1:9093" sends the alerts there), with a simulated
# fleet pushing through the exporter's queue and push client. The simulator
# first replays the last BACKFILL fast, so the dashboards have history, then
# carries the same fleet on live: the faults of the history that are not
# repaired yet are still there. Ctrl-C stops both. State lives in run/.
set -euo pipefail
cd "$(dirname "$0")/.."
KIOSKS=${KIOSKS:-300}
LISTEN=${LISTEN:-127.0.0.1:8428}
BACKFILL=${BACKFILL:-1h}
FAULT_RATE=${FAULT_RATE:-2}
dir=run
mkdir -p "$dir"
# kioskmon needs an inventory to start; the simulator adds its kiosks to it.
[ -f "$dir/inventory.yml" ] || printf 'version: v1\nkiosks: []\n' > "$dir/inventory.yml"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM
am_args=()
for am in ${ALERTMANAGER:-}; do am_args+=(--alertmanager "$am"); done
bin/kioskmon serve --listen "$LISTEN" --data "$dir/data" --inventory "$dir/inventory.yml" "${am_args[@]}" 2>"$dir/kioskmon.log" &
pids+=($!)
for _ in $(seq 1 300); do
	curl -fsS "http://$LISTEN/readyz" >/dev/null 2>&1 && break
	kill -0 "${pids[0]}" 2>/dev/null || { cat "$dir/kioskmon.log" >&2; exit 1; }
	sleep 0.2
done
cat <<EOT

kioskmon is running (log: $dir/kioskmon.log); the simulated fleet of $KIOSKS kiosks
fills in the last $BACKFILL, then pushes live every 15 s. Ctrl-C stops both.
  query UI:  http://$LISTEN/vmui/
  Grafana:   Prometheus data source, URL http://$LISTEN
  try:       curl -s 'http://$LISTEN/api/v1/query?query=sum(kiosk_app_up)%20by%20(district)'
  alerts:    http://$LISTEN/api/v1/alerts   rules: http://$LISTEN/api/v1/rules   held back: http://$LISTEN/api/v1/alerts/held
  inspections: http://$LISTEN/api/v1/inspections   coverage: http://$LISTEN/api/v1/inspections/coverage
  incidents: export KIOSKMON_TOKEN=\$(cat $dir/data/admin-token); bin/kioskmon incidents list --open
  SLA report: http://$LISTEN/api/v1/sla/report?month=$(TZ=Asia/Shanghai date +%Y-%m)&lang=zh (any user name; password: the token in $dir/data/admin-token)
  faults:    $dir/truth.jsonl (what the simulator injected, a line when a fault is repaired)
  inventory: $dir/inventory.yml   data: $dir/data

EOT
catch_up=()
if [ "$BACKFILL" != 0 ]; then
	# Started again on the same data, the fleet fills in only the time since
	# its last gather: two simulations of one stretch would interleave.
	since=$(curl -fsS -G "http://$LISTEN/api/v1/query" --data-urlencode "time=$(date +%s)" --data-urlencode nocache=1 \
		--data-urlencode "query=time() - max(tlast_over_time(kiosk_exporter_build_info[$BACKFILL]))" |
		sed -n 's/.*"value":\[[0-9.]*,"\([0-9]*\)[0-9.]*"\].*/\1/p')
	if [ -z "$since" ]; then
		catch_up=(--speed 120 --catch-up "$BACKFILL")
	elif [ "$since" -gt 60 ]; then
		echo "run/data has the fleet's gathers up to ${since}s ago: filling in only those ${since}s"
		catch_up=(--speed 120 --catch-up "${since}s")
	fi
fi
bin/kiosk-sim --kiosks "$KIOSKS" --inventory "$dir/inventory.yml" --push "http://$LISTEN" "${catch_up[@]}" \
	--fault-rate "$FAULT_RATE" --truth "$dir/truth.jsonl" --progress 1m &
pids+=($!)
wait "${pids[1]}"
