#!/usr/bin/env bash
# Give tests a running Docker Engine with a tiny local image, shoal-busybox:latest.
#
# Idempotent; run as root on a fresh Debian 12 machine (CI runs it before the docker-marked tests).
#  1. apt-get install docker.io busybox-static (only when missing)
#  2. start dockerd in the background (log: /tmp/dockerd.log) unless /var/run/docker.sock answers
#  3. build shoal-busybox:latest with `docker import` from a busybox rootfs (no registry is reachable)
#
# docker.io installs an older docker CLI at /usr/bin/docker; the tests' CLI is /usr/local/bin/docker
# (28.x, pointed at shoald). This script only ever uses /usr/bin/docker against dockerd's own socket.
set -euo pipefail

IMAGE="${SHOAL_BUSYBOX_IMAGE:-shoal-busybox:latest}"
DOCKER_SOCK="/var/run/docker.sock"
DOCKER_LOG="${DOCKERD_LOG:-/tmp/dockerd.log}"
DOCKER_CLI="/usr/bin/docker"
START_TIMEOUT_S=60

log() { printf 'setup-dockerd: %s\n' "$*" >&2; }

need_root() {
    if [ "$(id -u)" != 0 ]; then
        log "must run as root"
        exit 1
    fi
}

install_packages() {
    local missing=()
    [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
    [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || missing+=(busybox-static)
    if [ "${#missing[@]}" -eq 0 ]; then
        return
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # docker.io's postinst tries to start the service through systemd/init; without an init system
    # that fails harmlessly, and we start dockerd ourselves below.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

engine_answers() {
    [ -S "$DOCKER_SOCK" ] && "$DOCKER_CLI" -H "unix://$DOCKER_SOCK" info >/dev/null 2>&1
}

wait_for_engine() {
    local deadline=$((SECONDS + START_TIMEOUT_S))
    while [ "$SECONDS" -lt "$deadline" ]; do
        engine_answers && return 0
        # Stop waiting early if the daemon we started has already died.
        if [ -n "${1:-}" ] && ! pid_alive "$1"; then
            return 1
        fi
        sleep 0.5
    done
    return 1
}

# Alive means running: a killed daemon whose parent never reaps it stays a zombie, and `kill -0`
# still succeeds on a zombie.
pid_alive() {
    local state
    state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

remove_stale_pidfile() {
    local pid
    [ -f "$1" ] || return 0
    pid="$(cat "$1" 2>/dev/null || true)"
    if [ -z "$pid" ] || ! pid_alive "$pid"; then
        log "removing stale pid file $1"
        rm -f "$1"
    fi
}

start_dockerd() {
    if engine_answers; then
        log "dockerd already answers on $DOCKER_SOCK"
        return
    fi
    # Stale pid files from a killed daemon make dockerd refuse to start (or wait for a dead containerd).
    remove_stale_pidfile /var/run/docker.pid
    remove_stale_pidfile /var/run/docker/containerd/containerd.pid
    # containerd is started by dockerd itself when no system containerd socket is up.
    log "starting dockerd (log: $DOCKER_LOG)"
    nohup /usr/sbin/dockerd -H "unix://$DOCKER_SOCK" ${DOCKERD_EXTRA_ARGS:-} >>"$DOCKER_LOG" 2>&1 </dev/null &
    local pid=$!
    if wait_for_engine "$pid"; then
        log "dockerd is up (pid $pid)"
        return
    fi
    log "dockerd did not answer within ${START_TIMEOUT_S}s; last log lines:"
    tail -n 30 "$DOCKER_LOG" >&2 || true
    exit 1
}

note_forward_policy() {
    local policy
    policy="$(iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" { print $3 }')" || true
    if [ "$policy" = DROP ]; then
        log "note: dockerd set the iptables FORWARD policy to DROP (fine for docker0; other bridges,"
        log "      e.g. shoal's test bridges, need their own ACCEPT rules)"
    fi
}

# Applets the image links to /bin/busybox, so they run as commands of their own (Debian's busybox
# `sh` finds every applet even without a link); `trap` is a shell builtin and needs no link.
APPLETS=(sh echo cat sleep hostname ls env id pwd httpd wget kill true false grep head tail ps top
    mkdir rm touch test printf date seq uname nc nslookup)

# Bump when the image's contents change, so machines that kept an older build get the new one.
IMAGE_REVISION=2

build_image() {
    local found old_id
    old_id="$("$DOCKER_CLI" -H "unix://$DOCKER_SOCK" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
    found="$("$DOCKER_CLI" -H "unix://$DOCKER_SOCK" image inspect \
        --format '{{ index .Config.Labels "io.shoal.busybox.revision" }}' "$IMAGE" 2>/dev/null || true)"
    if [ "$found" = "$IMAGE_REVISION" ]; then
        log "image $IMAGE (revision $IMAGE_REVISION) already present"
        return
    fi
    local rootfs
    rootfs="$(mktemp -d /tmp/shoal-busybox-rootfs.XXXXXX)"
    mkdir -p "$rootfs"/{bin,www,tmp,etc,proc,sys,dev,root}
    chmod 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    local applet
    for applet in "${APPLETS[@]}"; do
        ln -s busybox "$rootfs/bin/$applet"
    done
    # Users and groups, so `--user nobody` resolves.
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
    printf '<html><body>shoal-busybox</body></html>\n' >"$rootfs/www/index.html"
    log "importing $IMAGE"
    tar -C "$rootfs" -c . | "$DOCKER_CLI" -H "unix://$DOCKER_SOCK" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change "LABEL io.shoal.busybox.revision=$IMAGE_REVISION" \
        --change 'CMD ["/bin/busybox","httpd","-f","-p","80","-h","/www"]' \
        - "$IMAGE" >/dev/null
    rm -rf "$rootfs"
    if [ -n "$old_id" ]; then
        # The previous build, now untagged; still in use by a container it stays.
        "$DOCKER_CLI" -H "unix://$DOCKER_SOCK" rmi "$old_id" >/dev/null 2>&1 || true
    fi
    log "image $IMAGE built"
}

main() {
    need_root
    install_packages
    start_dockerd
    note_forward_policy
    build_image
    "$DOCKER_CLI" -H "unix://$DOCKER_SOCK" version --format 'setup-dockerd: engine {{.Server.Version}} ready' >&2
}

main "$@"
