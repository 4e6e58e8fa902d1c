#!/usr/bin/env bash
# SmarterMail API simulator (lab/smsim/smsim.py), one HTTPS process per profile:
#   https://mail.hardened.test (127.0.0.10:443)  profile lab/smsim/profiles/hardened.yaml
#   https://mail.weak.test     (127.0.0.20:443)  profile lab/smsim/profiles/weak.yaml
# The third profile (variant.yaml, another build's API shapes) is not started here: the self-tests
# start it on a free port, and docs/SMARTERMAIL.md shows how to start it by hand.
# Run with $LAB_PYTHON (the repo's .venv), certificates from 10-certs.sh, the lab's API account
# from lab/credentials.env (MAILAUDIT_API_USER / MAILAUDIT_API_PASSWORD; appended if missing).
# Runtime files: lab/run/smsim/<profile>.{pid,log,out,fault}. Writing JSON such as
# {"mode": "error500"} into <profile>.fault switches a fault on (see smsim.py); `up` clears it.
# Usage: 70-smsim.sh up | down | status
set -euo pipefail
COMPONENT=${COMPONENT:-70-smsim}
source "$(dirname "$0")/../lib.sh"

DIR="$RUN_DIR/smsim"
CREDS="$LAB_DIR/credentials.env"
PORT=443
CERT_WAIT_S=${CERT_WAIT_S:-30}
PROFILES=("hardened:$HARDENED_IP:mail.hardened.test" "weak:$WEAK_IP:mail.weak.test")

# The lab's API account (lab only). Appended once; other components' lines are left alone.
ensure_credentials() {
    if ! grep -q '^MAILAUDIT_API_USER=' "$CREDS" 2>/dev/null; then
        {
            echo "# SmarterMail API simulator (lab/smsim, 70-smsim.sh): system-admin account, lab only"
            echo "MAILAUDIT_API_USER=audit-admin"
            echo "MAILAUDIT_API_PASSWORD=Lab-Api-Only-7Hq2xZ"
        } >> "$CREDS"
        log "appended the API account to $CREDS"
    fi
    local user password
    user=$(sed -n 's/^MAILAUDIT_API_USER=//p' "$CREDS" | tail -1)
    password=$(sed -n 's/^MAILAUDIT_API_PASSWORD=//p' "$CREDS" | tail -1)
    [ -n "$user" ] && [ -n "$password" ] || die "$CREDS lacks MAILAUDIT_API_USER or MAILAUDIT_API_PASSWORD"
    export SMSIM_USER="$user" SMSIM_PASSWORD="$password"
}

wait_cert() {
    local host=$1 i
    for ((i = 0; i <= CERT_WAIT_S; i++)); do
        [ -s "$RUN_DIR/certs/$host.crt" ] && [ -s "$RUN_DIR/certs/$host.key" ] && return 0
        sleep 1
    done
    die "no certificate $RUN_DIR/certs/$host.crt (made by 10-certs.sh; run it first)"
}

up_one() {
    local name=$1 ip=$2 host=$3 pidfile="$DIR/$1.pid" logfile="$DIR/$1.log" out="$DIR/$1.out"
    if pid_alive "$pidfile"; then
        log "API simulator ($name) already running on https://$ip:$PORT (pid $(cat "$pidfile"))"
        return 0
    fi
    wait_cert "$host"
    rm -f "$DIR/$name.fault"
    : > "$out"
    local extra=() fip
    if [ "$name" = hardened ]; then  # the fleet addresses (lib.sh) serve the hardened profile too
        for fip in $(fleet_ips); do extra+=(--also-bind "$fip"); done
    fi
    setsid nohup "$LAB_PYTHON" -W ignore::DeprecationWarning "$LAB_DIR/smsim/smsim.py" \
        --profile "$LAB_DIR/smsim/profiles/$name.yaml" --bind "$ip" --port "$PORT" "${extra[@]}" \
        --cert "$RUN_DIR/certs/$host.crt" --key "$RUN_DIR/certs/$host.key" \
        --fault-file "$DIR/$name.fault" --log "$logfile" >> "$out" 2>&1 < /dev/null &
    echo $! > "$pidfile"
    if ! wait_port "$ip" "$PORT" 15 || ! pid_alive "$pidfile"; then
        show_log_tail "$out" "$logfile"
        stop_pidfile "$pidfile"
        die "API simulator ($name) did not start on $ip:$PORT"
    fi
    log "API simulator ($name) on https://$host ($ip:$PORT, pid $(cat "$pidfile"), log $logfile)"
}

up() {
    [ -x "$LAB_PYTHON" ] || die "no Python at $LAB_PYTHON (make install creates .venv)"
    mkdir -p "$DIR"
    ensure_credentials
    local entry
    for entry in "${PROFILES[@]}"; do
        IFS=: read -r name ip host <<< "$entry"
        up_one "$name" "$ip" "$host"
    done
}

down() {
    local entry
    for entry in "${PROFILES[@]}"; do
        IFS=: read -r name ip host <<< "$entry"
        stop_pidfile "$DIR/$name.pid"
    done
    log "API simulators stopped"
}

status() {
    local entry rc=0
    for entry in "${PROFILES[@]}"; do
        IFS=: read -r name ip host <<< "$entry"
        if pid_alive "$DIR/$name.pid" && wait_port "$ip" "$PORT" 1; then
            log "API simulator ($name) running on https://$ip:$PORT"
        else
            log "API simulator ($name) not running"
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
