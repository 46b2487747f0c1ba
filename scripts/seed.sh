#!/usr/bin/env bash
# The seed scenario of DESIGN.md on the embedded process executor: a one-node swarm, a 5-replica web
# service published on 8080 through the routing mesh, then scale, update and rm. Prints each step.
set -euo pipefail
cd "$(dirname "$0")/.."
SHOAL_SKIP_DOCKERD=1 bash scripts/setup.sh

work=$(mktemp -d /tmp/shoal-seed.XXXXXX)
export DOCKER_HOST="unix://$work/shoal.sock"
DOCKER=/usr/local/bin/docker
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

shoald -H "$DOCKER_HOST" --data-root "$work/data" >"$work/shoald.log" 2>&1 &
shoald_pid=$!
cleanup() {
    "$DOCKER" swarm leave --force >/dev/null 2>&1 || true
    kill "$shoald_pid" 2>/dev/null || true
    wait "$shoald_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do "$DOCKER" version >/dev/null 2>&1 && break; sleep 0.1; done

step "$DOCKER" swarm init --advertise-addr 127.0.0.1
step "$DOCKER" service create --name frontend --replicas 5 -p 8080:80/tcp my-apache2:latest \
    python3 -m shoal.demo.web --port 80
step "$DOCKER" service ls
step "$DOCKER" service ps frontend
step "$DOCKER" ps
printf '\n\033[1m$ for i in $(seq 10); do curl -s http://127.0.0.1:8080/; done\033[0m\n'
for _ in $(seq 10); do curl -s --max-time 5 http://127.0.0.1:8080/; done
step "$DOCKER" service scale frontend=3
step "$DOCKER" service update --env-add COLOR=blue frontend
step "$DOCKER" service ps frontend
step "$DOCKER" service rm frontend
echo; echo "seed scenario done (daemon log: $work/shoald.log)"
