#!/usr/bin/env bash
# make run: the kioskmon server on its embedded defaults, with a simulated fleet
# of kiosks pushing over remote write every 15 s. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
KIOSKS=${KIOSKS:-50}
LISTEN=${LISTEN:-127.0.0.1:8428}
dir=run
inv=$dir/inventory.yml
mkdir -p "$dir"
if [ ! -f "$inv" ]; then
	echo "creating a demo inventory of $KIOSKS kiosks in $inv"
	bin/ingest-bench --inventory-out "$inv" --kiosks "$KIOSKS" --inventory-only
fi
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
bin/kioskmon serve --listen "$LISTEN" --data "$dir/data" --inventory "$inv" &
pids+=($!)
for _ in $(seq 1 100); do
	curl -fsS "http://$LISTEN/readyz" >/dev/null 2>&1 && break
	sleep 0.2
done
echo "simulated fleet: $KIOSKS kiosks pushing every 15s to http://$LISTEN (Ctrl-C stops)"
echo "try: curl -s 'http://$LISTEN/api/v1/query?query=count(up)%20by%20(site)'"
bin/ingest-bench --url "http://$LISTEN" --kiosks "$KIOSKS" --auth basic --protocol remote-write \
	--shape live --interval 15s --duration 0 --out "$dir/fleet.json" &
pids+=($!)
wait -n "${pids[@]}"
