#!/usr/bin/env bash
# The monthly SLA report's cost: a ledger holding one month (October 2026) of
# SLA_INCIDENTS incidents (default 1000000) over SLA_KIOSKS kiosks (default
# 100000), each with its lifecycle, on SQLite and on a real PostgreSQL 15
# (SLA_BACKENDS, default "sqlite postgres"); then `kioskmon sla report` in HTML
# and CSV, timed, with its peak RSS. Writes bench-results/sla.txt. Filling the
# ledger takes minutes (it goes through the ledger's own import, hash chain
# and lifecycle checks); the filled ledgers (the SQLite file, the PostgreSQL
# cluster) are kept in bench-results/sla-cache for reruns of the same size.
# SLA_FILL_ONLY=1 fills and reports nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
incidents=${SLA_INCIDENTS:-1000000}
kiosks=${SLA_KIOSKS:-100000}
backends=${SLA_BACKENDS:-sqlite postgres}
mkdir -p bin bench-results
go build -o bin/kioskmon ./cmd/kioskmon
go build -o bin/slobench ./internal/slobench
cache=bench-results/sla-cache/$kiosks-$incidents
mkdir -p "$cache"
out=bench-results/sla.txt
echo "SLA report, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores: one month, $incidents incidents, $kiosks kiosks" > "$out"

# The same report from a running server, which holds the inventory already:
# the time a manager waits for the page (the wall time of the request).
served() { # backend dsn
	local dir addr server
	dir=$(mktemp -d)
	addr=127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	bin/kioskmon serve --listen "$addr" --data "$dir/data" --ledger "$2" --inventory "$cache/inventory.yml" \
		--rules.disable --inspection.disable >/dev/null 2>"$dir/kioskmon.log" &
	server=$!
	for _ in $(seq 1 300); do curl -fsS "http://$addr/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
	# Each twice: the server's first request also warms its connection and heap.
	for format in html csv html csv; do
		curl -fsS -o "$cache/served.$format" -w '%{time_total}\n' -H "Authorization: Bearer $(cat "$dir/data/admin-token")" \
			"http://$addr/api/v1/sla/report?month=2026-10&format=$format&lang=zh" >"$cache/served.time"
		printf '%-8s %-4s: %6.2f s from a running server (GET /api/v1/sla/report), %s bytes\n' "$1" "$format" \
			"$(cat "$cache/served.time")" "$(stat -c %s "$cache/served.$format")" | tee -a "$out"
	done
	printf '%-8s       server peak RSS %s MiB\n' "$1" "$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$server/status")" | tee -a "$out"
	kill "$server"
	wait "$server" 2>/dev/null || true
	rm -rf "$dir"
}

report() { # backend dsn
	for format in html csv; do
		/usr/bin/time -f '%e %M' -o "$cache/time" bin/kioskmon sla report --ledger "$2" --inventory "$cache/inventory.yml" \
			--month 2026-10 --format "$format" --lang zh --out "$cache/report.$format" 2>"$cache/report.log"
		read -r secs rss < "$cache/time"
		measured=$(sed -n 's/.*measured in \(.*\)$/\1/p' "$cache/report.log")
		printf '%-8s %-4s: %6.2f s wall (figures %s), peak RSS %4.0f MiB, %s bytes\n' "$1" "$format" "$secs" "$measured" \
			"$(echo "$rss/1024" | bc -l)" "$(stat -c %s "$cache/report.$format")" | tee -a "$out"
	done
}

for backend in $backends; do
	case $backend in
	sqlite)
		dsn=$PWD/$cache/ledger.db
		if [ ! -f "$cache/sqlite.done" ]; then
			rm -f "$dsn" "$dsn-wal" "$dsn-shm"
			echo "bench-sla: filling the SQLite ledger ($incidents incidents)..."
			start=$(date +%s)
			bin/slobench --kiosks "$kiosks" --incidents "$incidents" --inventory "$cache/inventory.yml" --ledger "$dsn" 2>&1 |
				awk 'NR % 10 == 0 || /in [0-9]/' >&2
			echo "sqlite   fill: $(( $(date +%s) - start )) s, $(du -m "$dsn" | cut -f1) MiB" | tee -a "$out"
			touch "$cache/sqlite.done"
		fi
		[ -z "${SLA_FILL_ONLY:-}" ] || continue
		report sqlite "$dsn"
		served sqlite "$dsn"
		;;
	postgres)
		bin=/usr/lib/postgresql/15/bin
		[ -x "$bin/pg_ctl" ] || { echo "bench-sla: PostgreSQL 15 is not installed (bash scripts/install-deps.sh test)" >&2; continue; }
		# The filled cluster is kept in the cache too, stopped between runs.
		pgdir=$PWD/$cache/postgres
		as=()
		[ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
		if [ ! -f "$cache/postgres.done" ]; then
			rm -rf "$pgdir"
			mkdir -p "$pgdir"
			chmod 755 "$pgdir"
			[ "$(id -u)" = 0 ] && chown postgres: "$pgdir"
			"${as[@]}" "$bin/initdb" -D "$pgdir/data" -U kioskmon --auth=trust -E UTF8 >/dev/null
		fi
		port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		"${as[@]}" "$bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -o "-c listen_addresses=127.0.0.1 -p $port -k $pgdir" -w start >/dev/null
		stop_pg() { "${as[@]}" "$bin/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null || true; }
		trap stop_pg EXIT
		dsn="postgres://kioskmon@127.0.0.1:$port/postgres?sslmode=disable"
		[ -f "$cache/inventory.yml" ] || bin/slobench --kiosks "$kiosks" --incidents 0 --inventory "$cache/inventory.yml" --ledger "$PWD/$cache/empty.db" >/dev/null 2>&1
		if [ ! -f "$cache/postgres.done" ]; then
			echo "bench-sla: filling the PostgreSQL ledger ($incidents incidents)..."
			start=$(date +%s)
			bin/slobench --kiosks "$kiosks" --incidents "$incidents" --inventory "$cache/inventory.yml" --ledger "$dsn" 2>&1 |
				awk 'NR % 10 == 0 || /in [0-9]/' >&2
			echo "postgres fill: $(( $(date +%s) - start )) s" | tee -a "$out"
			touch "$cache/postgres.done"
		fi
		if [ -n "${SLA_FILL_ONLY:-}" ]; then
			stop_pg
			trap - EXIT
			continue
		fi
		report postgres "$dsn"
		served postgres "$dsn"
		stop_pg
		trap - EXIT
		;;
	*) echo "bench-sla: unknown backend $backend (sqlite, postgres)" >&2; exit 2 ;;
	esac
done
