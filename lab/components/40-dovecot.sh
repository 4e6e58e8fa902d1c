#!/usr/bin/env bash
# Two Dovecot instances (`dovecot -c FILE`, own base_dir each), one per lab mail server:
#   hardened  127.0.0.10: IMAP 143 (STARTTLS) / 993, POP3 110 (STARTTLS) / 995, strict TLS
#   weak      127.0.0.20: the same ports, TLS 1.0+, weak ciphers, clear-text passwords
# Each serves SASL to the Postfix instance of its server through
# lab/run/postfix/<server>/spool/private/auth (30-postfix.sh makes that folder) and the maildirs
# in lab/run/mail/<domain>/<user>/Maildir that Postfix writes.
# Config: lab/dovecot/common.conf + lab/dovecot/<server>.conf -> lab/run/dovecot/<server>/dovecot.conf.
# Users: lab/dovecot/users.list in each domain, password MAILAUDIT_SMTP_PASSWORD from
# lab/credentials.env, hashed with `doveadm pw -s SHA512-CRYPT` into lab/run/dovecot/<server>/users.
# Usage: 40-dovecot.sh up | down | status [hardened|weak]
set -euo pipefail
COMPONENT=${COMPONENT:-40-dovecot}
source "$(dirname "$0")/../lib.sh"

SRC="$LAB_DIR/dovecot"
CERTS="$RUN_DIR/certs"
MAILDIR_BASE="$RUN_DIR/mail"
MAIL_USER=mail                      # owner of the maildirs (Postfix virtual(8) writes as it too)
mapfile -t USERS < <(sed 's/#.*//; /^[[:space:]]*$/d' "$SRC/users.list")
SERVERS=(hardened weak)
declare -A IP=([hardened]=$HARDENED_IP [weak]=$WEAK_IP)
PORTS="143 993 110 995"

dir_of() { echo "$RUN_DIR/dovecot/$1"; }
pidfile_of() { echo "$(dir_of "$1")/base/master.pid"; }
socket_of() { echo "$RUN_DIR/postfix/$1/spool/private/auth"; }

password() {
    local pw
    pw=$(sed -n 's/^MAILAUDIT_SMTP_PASSWORD=//p' "$LAB_DIR/credentials.env" | tail -n 1)
    [ -n "$pw" ] || die "no MAILAUDIT_SMTP_PASSWORD in $LAB_DIR/credentials.env"
    echo "$pw"
}

configure() {
    local server=$1 dir domain=$1.test pw
    dir=$(dir_of "$server")
    mkdir -p "$dir/base" "$dir/state" "$MAILDIR_BASE/$domain"
    # common.conf turns the penalty listener off (mode 0), so Dovecot neither makes nor removes it;
    # a socket left from an older run would make the auth process hang connecting to it.
    rm -f "$dir/base/anvil-auth-penalty"
    chown "$MAIL_USER:$MAIL_USER" "$MAILDIR_BASE/$domain"
    cat "$SRC/common.conf" "$SRC/$server.conf" | sed -e "s|@DIR@|$dir|g" -e "s|@IP@|${IP[$server]}|g" \
        -e "s|@SERVER@|$server|g" -e "s|@DOMAIN@|$domain|g" -e "s|@CERTS@|$CERTS|g" \
        -e "s|@MAIL_UID@|$(id -u $MAIL_USER)|g" -e "s|@POSTFIX_SPOOL@|$RUN_DIR/postfix/$server/spool|g" \
        > "$dir/dovecot.conf"
    if [ "$server" = hardened ]; then  # the fleet addresses (lib.sh) listen too
        sed -i "s|^listen = .*|listen = ${IP[$server]}, $(fleet_ips | paste -sd, - | sed 's/,/, /g')|" "$dir/dovecot.conf"
    fi
    # The Postfix queue folder may not exist yet if Dovecot is started alone; make the socket's
    # folder the way Postfix wants it (30-postfix.sh does the same).
    mkdir -p "$(dirname "$(socket_of "$server")")"
    chown postfix "$(dirname "$(socket_of "$server")")"
    chmod 0700 "$(dirname "$(socket_of "$server")")"
    # Hash the lab password once; again only when credentials.env has another password.
    pw=$(password)
    if ! [ -s "$dir/users" ] || ! doveadm pw -t "$(head -n 1 "$dir/users" | cut -d: -f2)" -p "$pw" >/dev/null 2>&1; then
        make_users "$server" "$pw"
    fi
    # Read by Dovecot's auth process, which runs as the dovecot user.
    chgrp dovecot "$dir/users"
    chmod 0640 "$dir/users"
}

# make_users SERVER PASSWORD: the passwd-file with every lab user of the server's domain.
make_users() {
    local server=$1 pw=$2 dir domain=$1.test user home
    dir=$(dir_of "$server")
    : > "$dir/users.new"
    for user in "${USERS[@]}"; do
        home="$MAILDIR_BASE/$domain/$user"
        # user:password:uid:gid:gecos:home:shell
        printf '%s:%s:%s:%s::%s::\n' "$user@$domain" "$(doveadm pw -s SHA512-CRYPT -p "$pw")" \
            "$(id -u $MAIL_USER)" "$(id -g $MAIL_USER)" "$home" >> "$dir/users.new"
    done
    mv "$dir/users.new" "$dir/users"
    log "hashed the lab password for ${USERS[*]} @$domain into $dir/users"
}

# fail SERVER MESSAGE: show the end of the instance's log, stop it (so that the next `up` does
# not take a broken instance for a running one) and stop with the message.
fail() {
    show_log_tail "$(dir_of "$1")/dovecot.log"
    down_one "$1" >/dev/null
    die "$2"
}

# greets SERVER PORT: the IMAP/POP3 greeting comes, in clear text or over implicit TLS (the
# logout makes the server close the connection, so s_client ends at once).
greets() {
    local ip=${IP[$1]} port=$2 line
    case $port in
        143|110) line=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" && head -n 1 <&3' "$ip" "$port" 2>/dev/null) || true ;;
        993) line=$(printf 'a LOGOUT\r\n' | timeout 5 openssl s_client -connect "$ip:$port" -quiet 2>/dev/null | head -n 1) || true ;;
        995) line=$(printf 'QUIT\r\n' | timeout 5 openssl s_client -connect "$ip:$port" -quiet 2>/dev/null | head -n 1) || true ;;
    esac
    [[ $line == "* OK"* || $line == "+OK"* ]]
}

# postfix_auth_ok SERVER: the Postfix instance of SERVER gets the mechanism list from this Dovecot
# and offers AUTH (after STARTTLS on 587). No AUTH is sent: Postfix rate-limits AUTH commands.
postfix_auth_ok() {
    local ip=${IP[$1]}
    printf 'EHLO lab.check\r\nQUIT\r\n' | timeout 10 openssl s_client -connect "$ip:587" -starttls smtp \
        -quiet -cipher 'DEFAULT:@SECLEVEL=0' 2>/dev/null | grep -q '^250[ -]AUTH '
}

running() { pid_alive "$(pidfile_of "$1")"; }

up_one() {
    local server=$1 dir port
    dir=$(dir_of "$server")
    if running "$server" && [ -S "$(socket_of "$server")" ]; then
        log "dovecot $server already running (pid $(cat "$(pidfile_of "$server")")) on ${IP[$server]}"
        return 0
    fi
    # Running without the SASL socket (Postfix's queue folder was re-made): start it again.
    running "$server" && down_one "$server"
    # (Not `ip ... | grep -q`: with pipefail, grep's early exit can make ip fail with SIGPIPE.)
    on_lo "${IP[$server]}"
    [ -s "$CERTS/mail.$server.test.crt" ] || die "no certificate $CERTS/mail.$server.test.crt (run 10-certs.sh up first)"
    configure "$server"
    dovecot -c "$dir/dovecot.conf" >"$dir/start.out" 2>&1 || { cat "$dir/start.out" >&2; fail "$server" "dovecot $server did not start"; }
    for port in $PORTS; do
        wait_port "${IP[$server]}" "$port" 10 || fail "$server" "dovecot $server does not listen on ${IP[$server]}:$port"
        greets "$server" "$port" || fail "$server" "dovecot $server: no greeting on ${IP[$server]}:$port"
    done
    local i
    for ((i = 0; i < 50; i++)); do [ -S "$(socket_of "$server")" ] && break; sleep 0.1; done
    [ -S "$(socket_of "$server")" ] || fail "$server" "dovecot $server did not make the SASL socket $(socket_of "$server")"
    doveadm -c "$dir/dovecot.conf" auth test "${USERS[0]}@$server.test" "$(password)" >/dev/null 2>&1 \
        || fail "$server" "dovecot $server: the lab password does not authenticate ${USERS[0]}@$server.test"
    log "dovecot $server (pid $(cat "$(pidfile_of "$server")")) on ${IP[$server]}: ${PORTS// /,}, SASL for postfix $server (log $dir/dovecot.log)"
    # Postfix may have been started before the socket existed: now check the whole chain.
    if postfix -c "$RUN_DIR/postfix/$server/etc" status >/dev/null 2>&1; then
        # Retried for 20 s: smtpd may still be throttled after connections that came without the socket.
        local deadline=$((SECONDS + 20))
        until bash "$LAB_DIR/components/30-postfix.sh" status "$server" >/dev/null; do
            ((SECONDS < deadline)) || die "postfix is running but does not greet on every port: see bash lab/components/30-postfix.sh status $server"
            sleep 1
        done
        postfix_auth_ok "$server" || die "postfix $server does not offer AUTH on ${IP[$server]}:587 after STARTTLS (log $RUN_DIR/postfix/$server/postfix.log)"
        log "postfix $server offers AUTH through dovecot $server"
    fi
}

down_one() {
    local server=$1 pidfile
    pidfile=$(pidfile_of "$server")
    # Dovecot leaves its listener in Postfix's folder; a stale socket would look like a live one.
    running "$server" || { rm -f "$pidfile" "$(socket_of "$server")"; return 0; }
    stop_pidfile "$pidfile"
    rm -f "$(socket_of "$server")"
    log "dovecot $server stopped"
}

status_one() {
    local server=$1 port
    running "$server" || { log "dovecot $server not running"; return 1; }
    for port in $PORTS; do
        greets "$server" "$port" || { log "dovecot $server running but no greeting on ${IP[$server]}:$port"; return 1; }
    done
    [ -S "$(socket_of "$server")" ] || { log "dovecot $server running but no SASL socket $(socket_of "$server")"; return 1; }
    log "dovecot $server running (pid $(cat "$(pidfile_of "$server")")) on ${IP[$server]}: ${PORTS// /,}"
}

# An optional second argument (hardened or weak) limits the command to that instance.
[ -n "${2:-}" ] && { [ -n "${IP[$2]:-}" ] || die "no lab server '$2'"; SERVERS=("$2"); }
rc=0
case "${1:-}" in
    up) for s in "${SERVERS[@]}"; do up_one "$s"; done ;;
    down) for s in "${SERVERS[@]}"; do down_one "$s"; done ;;
    status) for s in "${SERVERS[@]}"; do status_one "$s" || rc=1; done ;;
    *) echo "usage: $0 up|down|status [hardened|weak]" >&2; exit 2 ;;
esac
exit $rc
