# Shared helpers for lab components; sourced, never run.
# Every component is lab/components/NN-name.sh taking one argument: up | down | status.
LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="$LAB_DIR/run"          # git-ignored runtime folder: configs, keys, pids, logs, queues
mkdir -p "$RUN_DIR"

# Fixed lab addresses (see lab/README.md); components read these, never hard-code them twice.
HARDENED_IP=127.0.0.10
WEAK_IP=127.0.0.20
DNS_IP=127.0.0.53               # Knot DNS, authoritative for the lab zones
RESOLVER_IP=127.0.0.54          # Unbound, validating resolver trusting the lab's DNSSEC key
HARDENED_WEB_IP=127.0.0.11      # nginx: mta-sts.hardened.test
WEAK_WEB_IP=127.0.0.21          # nginx: mta-sts.weak.test
FAR_IP=127.0.2.10               # the latency lab: mail.far.test, the hardened server 25 ms away
FAR_RESOLVER_IP=127.0.2.54      # the latency lab: the validating resolver 25 ms away
# The fleet: the hardened Postfix and Dovecot also listen on 127.0.1.1 ... 127.0.1.N, so that a
# benchmark (bench/fleet.py) can audit N distinct server addresses (one client address each).
FLEET_SIZE=${LAB_FLEET_SIZE:-100}
fleet_ips() { local i; for ((i = 1; i <= FLEET_SIZE; i++)); do echo "127.0.1.$i"; done; }
LAB_PYTHON="${LAB_PYTHON:-$LAB_DIR/../.venv/bin/python}"

log() { printf '  %-10s %s\n' "${COMPONENT:-lab}" "$*"; }
die() { printf 'lab: %s: %s\n' "${COMPONENT:-lab}" "$*" >&2; exit 1; }

# wait_port HOST PORT [SECONDS]: wait until a TCP port accepts connections.
wait_port() {
    local host=$1 port=$2 limit=${3:-15} i
    for ((i = 0; i < limit * 10; i++)); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# wait_udp_dns HOST PORT [SECONDS]: wait until a DNS server answers on HOST:PORT.
wait_dns() {
    local host=$1 port=$2 limit=${3:-15} i
    for ((i = 0; i < limit * 10; i++)); do
        if kdig +time=1 +retry=0 @"$host" -p "$port" . SOA >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

# on_lo IP: add IP/32 to the loopback device unless it is there. (The address list is read whole:
# `ip addr show | grep -q` can die of SIGPIPE under pipefail once the list is long.)
on_lo() {
    [[ $(ip -o -4 addr show dev lo) == *"inet $1/"* ]] || ip addr add "$1/32" dev lo
}

# pid_alive FILE: the pid recorded in FILE belongs to a running process.
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pidfile FILE: stop the process recorded in FILE (TERM, then KILL) and remove the file.
stop_pidfile() {
    local file=$1 pid i
    [ -s "$file" ] || return 0
    pid=$(cat "$file")
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$file"
}

# stop_daemon FILE NAME: stop the process recorded in FILE if it runs (saying so), else drop a stale FILE.
stop_daemon() {
    if pid_alive "$1"; then
        stop_pidfile "$1"
        log "$2 stopped"
    else
        rm -f "$1"
    fi
}

# show_log_tail FILE...: print the last lines of each log to stderr, so a failed start is visible
# (nothing here goes to syslog).
show_log_tail() {
    local file
    for file in "$@"; do
        { echo "--- last lines of $file:"; tail -n 25 "$file" 2>/dev/null || true; } >&2
    done
}
