#!/usr/bin/env bash
# The latency lab: the hardened server and the validating resolver as if far away, through a
# delaying forwarder (lab/latency/forwarder.py; the kernel here has no netem qdisc):
#   mail.far.test (127.0.2.10)  ports 25 465 587 143 993 110 995 443  -> 127.0.0.10 (hardened)
#   127.0.2.54:53 (UDP and TCP)                                        -> 127.0.0.54 (Unbound)
# Each direction waits LATENCY_MS (default 25 ms): 50 ms round-trip time. Names: lab/dns/far.test.zone.
# Runtime files: lab/run/latency/{server,resolver}.{pid,log}.
# Usage: 80-latency.sh up | down | status
set -euo pipefail
COMPONENT=${COMPONENT:-80-latency}
source "$(dirname "$0")/../lib.sh"

DIR="$RUN_DIR/latency"
DELAY_MS=${LATENCY_MS:-25}
SERVER_PORTS=25,465,587,143,993,110,995,443
FORWARDS=("server:$FAR_IP:$HARDENED_IP:$SERVER_PORTS:" "resolver:$FAR_RESOLVER_IP:$RESOLVER_IP:53:53")

up_one() {
    local name=$1 listen=$2 to=$3 tcp=$4 udp=$5
    if pid_alive "$DIR/$name.pid"; then
        log "$name forwarder already running on $listen"
        return 0
    fi
    nohup "$LAB_PYTHON" "$LAB_DIR/latency/forwarder.py" --listen "$listen" --to "$to" --tcp "$tcp" \
        ${udp:+--udp "$udp"} --delay-ms "$DELAY_MS" >"$DIR/$name.log" 2>&1 &
    echo $! > "$DIR/$name.pid"
    if ! wait_port "$listen" "${tcp%%,*}" 10; then
        show_log_tail "$DIR/$name.log"
        die "$name forwarder did not start on $listen"
    fi
    log "$name forwarder $listen -> $to (+${DELAY_MS} ms each way)"
}

up() {
    [ -x "$LAB_PYTHON" ] || die "no Python at $LAB_PYTHON (make install creates .venv)"
    mkdir -p "$DIR"
    local entry
    for entry in "${FORWARDS[@]}"; do
        IFS=: read -r name listen to tcp udp <<< "$entry"
        up_one "$name" "$listen" "$to" "$tcp" "$udp"
    done
}

down() {
    local entry
    for entry in "${FORWARDS[@]}"; do
        IFS=: read -r name _ <<< "$entry"
        stop_daemon "$DIR/$name.pid" "$name forwarder"
    done
}

status() {
    local entry rc=0
    for entry in "${FORWARDS[@]}"; do
        IFS=: read -r name listen _ tcp _ <<< "$entry"
        if pid_alive "$DIR/$name.pid" && wait_port "$listen" "${tcp%%,*}" 1; then
            log "$name forwarder running on $listen"
        else
            log "$name forwarder not running"
            rc=1
        fi
    done
    return $rc
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
