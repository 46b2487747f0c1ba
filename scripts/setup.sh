#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine (as root) for shoal: system packages, the Python package with
# its dev tools, and a local dockerd with a tiny busybox image for the docker-executor tests.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pair in ip:iproute2 iptables:iptables nsenter:util-linux unshare:util-linux cc:gcc conntrack:conntrack \
            curl:curl crun:crun skopeo:skopeo docker-registry:docker-registry busybox:busybox-static; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair#*:}")
done
# Docker's default seccomp profile, read by the oci executor (never copied into the project).
[ -f /usr/share/containers/seccomp.json ] || need_apt+=(golang-github-containers-common)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "+ apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The compose specification's JSON schema, read by `shoal stack deploy` (never copied into the project);
# --no-install-recommends keeps apt from pulling docker.io along.
if [ ! -f /usr/lib/python3/dist-packages/compose/config/compose_spec.json ]; then
    echo "+ apt-get install --no-install-recommends docker-compose"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi

# Always (re)install from this checkout: an editable install left by another clone would make the
# tests import that clone's code instead of this one's.
echo "+ pip install -e .[dev]"
PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check -e '.[dev]'

if [ "${SHOAL_SKIP_DOCKERD:-0}" != "1" ]; then
    bash ci/setup-dockerd.sh
fi
