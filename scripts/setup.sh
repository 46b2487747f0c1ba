#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine (as root) for shoal: system packages, the Python package with
# its dev tools, and a local dockerd with a tiny busybox image for the docker-executor tests.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pair in ip:iproute2 iptables:iptables nsenter:util-linux unshare:util-linux cc:gcc conntrack:conntrack \
            curl:curl; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair#*:}")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "+ apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! python3 -c 'import shoal, pytest_timeout, pytest_asyncio' >/dev/null 2>&1; then
    echo "+ pip install -e .[dev]"
    python3 -m pip install -q -e '.[dev]'
fi

if [ "${SHOAL_SKIP_DOCKERD:-0}" != "1" ]; then
    bash ci/setup-dockerd.sh
fi
