#!/usr/bin/env bash
# The kiosk exporter's footprint: peak RSS and CPU share of one core at a 15 s
# interval with every collector on, pushing to a real kioskmon. Writes
# bench-results/footprint.txt.
#   FOOTPRINT_DURATION=300 bash scripts/footprint.sh
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${FOOTPRINT_DURATION:-300}
mkdir -p bin bench-results
go build -o bin/kioskmon ./cmd/kioskmon
go build -o bin/kiosk-exporter ./cmd/kiosk-exporter
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$dir"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
server=127.0.0.1:$(port)
metrics=127.0.0.1:$(port)
appaddr=127.0.0.1:$(port)
printf 'version: v1\nkiosks: []\n' > "$dir/inventory.yml"
bin/kioskmon kiosks add --inventory "$dir/inventory.yml" --id fp-01 --site fp --district fp --provider fp >/dev/null
token=$(bin/kioskmon kiosks token --inventory "$dir/inventory.yml" --id fp-01 | tail -1)
echo "$token" > "$dir/token"
bin/kioskmon serve --listen "$server" --data "$dir/data" --inventory "$dir/inventory.yml" 2>"$dir/kioskmon.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -fsS "http://$server/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
cat > "$dir/exporter.yml" <<EOT
version: v1
interval: 15s
listen: $metrics
push: {url: "http://$server", kiosk_id: fp-01, token_file: $dir/token, queue_dir: $dir/queue}
collectors:
  host: {}
  ups: {address: "127.0.0.1:1", ups: [kiosk]}
  ipp: {printers: [{name: a4printer, url: "ipp://127.0.0.1:1/ipp/print"}]}
  network: {ping: {targets: [127.0.0.1], count: 10, interval: 1s}, dns: {names: [localhost]}}
  probe: {pages: [{name: home, url: "http://$server/healthz"}], platform: [{name: platform, url: "http://$server/readyz"}]}
  usb: {devices: [{name: idreader, kind: id_card_reader, usb_id: "0400:c35a"}]}
  app: {listen: "$appaddr", devices: [{name: idreader, kind: id_card_reader}]}
EOT
bin/kiosk-exporter --config "$dir/exporter.yml" 2>"$dir/exporter.log" &
exporter=$!
pids+=($exporter)
sleep 2
ticks() { awk '{print $14 + $15}' "/proc/$exporter/stat"; }
hz=$(getconf CLK_TCK)
start_ticks=$(ticks)
start=$(date +%s.%N)
echo "footprint: measuring the exporter (pid $exporter) for ${duration}s..."
# The application posts a heartbeat and a page load every 5 s, as a kiosk app would.
end=$(( $(date +%s) + duration ))
while [ "$(date +%s)" -lt "$end" ]; do
	curl -fsS -XPOST "http://$appaddr/v1/events" -H 'Content-Type: application/json' \
		-d '{"events":[{"type":"heartbeat"},{"type":"page_load","page":"home","seconds":0.4}]}' >/dev/null || true
	sleep 5
done
calc() { awk "BEGIN { print $1 }"; }
cpu=$(calc "($(ticks) - $start_ticks) / $hz")
wall=$(calc "$(date +%s.%N) - $start")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$exporter/status")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$exporter/status")
series=$(curl -fsS "http://$metrics/metrics" | grep -c '^kiosk_' || true)
queue=$(curl -fsS "http://$metrics/metrics" | awk '/^kiosk_exporter_queue_bytes / {print $2}')
pushed=$(curl -fsS "http://$metrics/metrics" | awk '/^kiosk_exporter_push_samples_total / {print $2}')
{
	echo "kiosk-exporter footprint, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -m), $(nproc) cores"
	echo "interval 15s, collectors: host ups ipp network probe usb app (+ push to kioskmon); ${duration}s measured"
	printf 'peak RSS (VmHWM):        %.1f MiB (now %.1f MiB)\n' "$(calc "$hwm/1024")" "$(calc "$rss/1024")"
	printf 'CPU share of one core:   %.3f%% (%.2f s CPU over %.0f s)\n' "$(calc "100*$cpu/$wall")" "$cpu" "$wall"
	echo "series per gather:       $series"
	echo "samples pushed:          $pushed"
	echo "queue bytes at the end:  $queue"
} | tee bench-results/footprint.txt
