#!/usr/bin/env bash
# make run: the kioskmon server on its embedded defaults, with a simulated fleet
# pushing over remote write every 15 s. Ctrl-C stops both. State lives in run/.
set -euo pipefail
cd "$(dirname "$0")/.."
KIOSKS=${KIOSKS:-50}
LISTEN=${LISTEN:-127.0.0.1:8428}
dir=run
mkdir -p "$dir"
if [ ! -f "$dir/inventory.yml" ] || [ ! -f "$dir/sim-tokens.json" ]; then
	bin/kiosk-sim init --inventory "$dir/inventory.yml" --tokens "$dir/sim-tokens.json" --kiosks "$KIOSKS"
fi
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM
bin/kioskmon serve --listen "$LISTEN" --data "$dir/data" --inventory "$dir/inventory.yml" &
pids+=($!)
for _ in $(seq 1 300); do
	curl -fsS "http://$LISTEN/readyz" >/dev/null 2>&1 && break
	kill -0 "${pids[0]}" 2>/dev/null || exit 1
	sleep 0.2
done
bin/kiosk-sim run --url "http://$LISTEN" --tokens "$dir/sim-tokens.json" --interval 15s &
pids+=($!)
cat <<EOT

kioskmon is running with a simulated fleet of $KIOSKS kiosks (Ctrl-C stops it).
  query UI:  http://$LISTEN/vmui/
  Grafana:   Prometheus data source, URL http://$LISTEN
  try:       curl -s 'http://$LISTEN/api/v1/query?query=count(up)%20by%20(district)'
  inventory: $dir/inventory.yml   data: $dir/data

EOT
wait -n "${pids[@]}"
