#!/usr/bin/env bash
# The seed scenario of DESIGN.md: a one-node swarm, a 5-replica web service published on 8080 through
# the routing mesh, then scale, update and rm. Prints each step.
# It runs on shoald's default executor (SHOAL_SEED_EXECUTOR=oci|process to choose): on oci the web
# image is built here from busybox-static (httpd and a CGI page printing the task's hostname) and given
# to shoald by `docker import`; on process the image only names the workload, a command on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
SHOAL_SKIP_DOCKERD=1 bash scripts/setup.sh

work=$(mktemp -d /tmp/shoal-seed.XXXXXX)
export DOCKER_HOST="unix://$work/shoal.sock"
# The docker CLI 28 of this project's machines, else Debian's (docker.io), as the tests choose it.
DOCKER=${SHOAL_DOCKER_CLI:-$(command -v /usr/local/bin/docker || command -v docker)}
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

executor_flag=()
if [ -n "${SHOAL_SEED_EXECUTOR:-}" ]; then executor_flag=(--executor "$SHOAL_SEED_EXECUTOR"); fi
shoald -H "$DOCKER_HOST" --data-root "$work/data" "${executor_flag[@]}" >"$work/shoald.log" 2>&1 &
shoald_pid=$!
cleanup() {
    "$DOCKER" swarm leave --force >/dev/null 2>&1 || true
    kill "$shoald_pid" 2>/dev/null || true
    wait "$shoald_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do "$DOCKER" version >/dev/null 2>&1 && break; sleep 0.1; done
# shoald logs "executor: NAME (why)" once it serves
for _ in $(seq 100); do grep -q "executor: " "$work/shoald.log" && break; sleep 0.1; done
executor=$(sed -n 's/.* executor: \([a-z]*\) (.*/\1/p' "$work/shoald.log" | head -n 1)
echo "shoald runs tasks with the ${executor:-unknown} executor"

step "$DOCKER" swarm init --advertise-addr 127.0.0.1
if [ "$executor" = oci ]; then
    python3 -m shoal.executor.oci.rootfs web "$work/web.tar"
    step "$DOCKER" import --change 'CMD ["httpd","-f","-v","-p","80","-h","/var/www"]' \
        --change 'EXPOSE 80/tcp' "$work/web.tar" my-apache2:latest
    step "$DOCKER" service create --name frontend --replicas 5 -p 8080:80/tcp my-apache2:latest
else
    step "$DOCKER" service create --name frontend --replicas 5 -p 8080:80/tcp my-apache2:latest \
        python3 -m shoal.demo.web --port 80
fi
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
