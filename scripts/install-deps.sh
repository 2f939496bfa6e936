#!/usr/bin/env bash
# Installs the Debian packages a group of tasks needs, idempotently:
#   install-deps.sh test    what `make test` starts (a real Prometheus, promtool, NUT upsd, ippeveprinter, snmpd, nftables, PostgreSQL 15,
#                           headless Chromium, poppler-utils and a CJK font for the SLA report's HTML and PDF)
#   install-deps.sh bench   what `make bench` compares against (VictoriaMetrics, Prometheus)
# Package services are not started: the tests start their own instances.
set -euo pipefail
[ -c /dev/null ] || { rm -f /dev/null; mknod -m 666 /dev/null c 1 3; }

packages=()
for group in "${@:-test}"; do
	case "$group" in
	test) packages+=(prometheus prometheus-alertmanager nut-server cups-ipp-utils avahi-daemon dbus snmpd snmp python3 nftables iproute2 postgresql-15 chromium poppler-utils fonts-noto-cjk) ;;
	bench) packages+=(prometheus victoria-metrics) ;;
	*) echo "install-deps: unknown group $group (use test or bench)" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: need root to install: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
	exit 1
fi
# Keep package postinst scripts from starting services on fixed ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
apt-get update -qq -o DPkg::Lock::Timeout=300 || apt-get update -qq -o APT::Sandbox::User=root -o DPkg::Lock::Timeout=300
apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
