#!/usr/bin/env bash
# Two Postfix instances of the lab's own (never Debian's default one), each started with
# `postfix -c DIR start`:
#   hardened  mail.hardened.test on 127.0.0.10: 25, 587, 465
#   weak      mail.weak.test     on 127.0.0.20: 25, 587, 465 and 10465-10468 (certificate faults)
# Config templates: lab/postfix/common.cf + lab/postfix/<server>/main.cf, lab/postfix/<server>/
# master.cf + lab/postfix/services.cf, maps beside them. Runtime: lab/run/postfix/<server>/
# (etc = config_directory, spool = queue_directory, data, postfix.log). Local mail goes to the
# maildirs in lab/run/mail that Dovecot (40-dovecot.sh) serves; SASL comes from Dovecot through
# spool/private/auth, which this script creates (40-dovecot.sh runs after it).
# Usage: 30-postfix.sh up | down | status [hardened|weak]
set -euo pipefail
COMPONENT=${COMPONENT:-30-postfix}
source "$(dirname "$0")/../lib.sh"

SRC="$LAB_DIR/postfix"
CERTS="$RUN_DIR/certs"
MAILDIR_BASE="$RUN_DIR/mail"
MAIL_USER=mail                      # owner of the maildirs (Postfix virtual(8) and Dovecot)
mapfile -t USERS < <(sed 's/#.*//; /^[[:space:]]*$/d' "$LAB_DIR/dovecot/users.list")
SERVERS=(hardened weak)
declare -A IP=([hardened]=$HARDENED_IP [weak]=$WEAK_IP)
declare -A PORTS=([hardened]="25 587 465" [weak]="25 587 465 10465 10466 10467 10468")
PLAIN_PORTS=" 25 587 "              # the others speak implicit TLS

dir_of() { echo "$RUN_DIR/postfix/$1"; }
running() { postfix -c "$(dir_of "$1")/etc" status >/dev/null 2>&1; }
master_pid() { cat "$(dir_of "$1")/spool/pid/master.pid" 2>/dev/null | tr -d ' ' || true; }

# render SERVER FILE...: the files concatenated, with the @PLACEHOLDERS@ filled in.
render() {
    local server=$1; shift
    local users_re
    users_re=$(IFS='|'; echo "${USERS[*]}")
    cat "$@" | sed -e "s|@DIR@|$(dir_of "$server")|g" -e "s|@IP@|${IP[$server]}|g" \
        -e "s|@SERVER@|$server|g" -e "s|@DOMAIN@|$server.test|g" -e "s|@CERTS@|$CERTS|g" \
        -e "s|@MAILDIR_BASE@|$MAILDIR_BASE|g" -e "s|@MAIL_UID@|$(id -u $MAIL_USER)|g" \
        -e "s|@MAIL_GID@|$(id -g $MAIL_USER)|g" -e "s/@USERS_RE@/$users_re/g"
}

configure() {
    local server=$1 dir etc domain=$1.test user f fip
    dir=$(dir_of "$server"); etc="$dir/etc"
    mkdir -p "$etc" "$dir/spool/private" "$dir/data"
    # The data directory must belong to postfix; private/ is made here (not by `postfix start`)
    # so that Dovecot can put its SASL socket there whichever of the two starts first.
    chown postfix "$dir/data" "$dir/spool/private"
    chmod 0700 "$dir/spool/private"
    render "$server" "$SRC/common.cf" "$SRC/$server/main.cf" > "$etc/main.cf"
    {
        render "$server" "$SRC/$server/master.cf"
        if [ "$server" = hardened ]; then  # the fleet addresses: the same listeners again
            for fip in $(fleet_ips); do
                render "$server" "$SRC/$server/master.cf" | grep -v '^#' | sed "s|^${IP[$server]}:|$fip:|"
            done
        fi
        render "$server" "$SRC/services.cf"
    } > "$etc/master.cf"
    for f in aliases vrfy-filter; do
        if [ -f "$SRC/$server/$f" ]; then render "$server" "$SRC/$server/$f" > "$etc/$f"; fi
    done
    # mailboxes: user@domain -> maildir below virtual_mailbox_base (trailing / = maildir).
    # senders (hardened only): each user owns their own address, then the template's lines.
    : > "$etc/mailboxes"; : > "$etc/senders.users"
    for user in "${USERS[@]}"; do
        echo "$user@$domain $domain/$user/Maildir/" >> "$etc/mailboxes"
        echo "$user@$domain $user@$domain" >> "$etc/senders.users"
    done
    if [ -f "$SRC/$server/senders" ]; then
        cat "$etc/senders.users" "$SRC/$server/senders" > "$etc/senders"
    fi
    rm -f "$etc/senders.users"
    mkdir -p "$MAILDIR_BASE/$domain"
    chown "$MAIL_USER:$MAIL_USER" "$MAILDIR_BASE/$domain"
}

# greets IP PORT: an smtpd answers 220 there. The master process owns the listening socket, so
# an open port proves nothing: a broken configuration only shows when smtpd starts and dies.
greets() {
    local line
    if [[ $PLAIN_PORTS == *" $2 "* ]]; then
        line=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" && head -n 1 <&3' "$1" "$2" 2>/dev/null) || true
    else
        # SECLEVEL=0: the 1024-bit certificate on 10468 must not stop the check.
        # QUIT makes smtpd close the connection, so s_client ends at once.
        line=$(printf 'QUIT\r\n' | timeout 5 openssl s_client -connect "$1:$2" -quiet \
            -cipher 'DEFAULT:@SECLEVEL=0' 2>/dev/null | head -n 1) || true
    fi
    [[ $line == 220* ]]
}

# listens IP PORT: within 10 s a socket listens there (checked without connecting).
listens() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ -n "$(ss -Hltn "src $1:$2")" ] && return 0
        sleep 0.1
    done
    return 1
}

# fail SERVER MESSAGE: show the end of the instance's log, stop it (so that the next `up` does
# not take a broken instance for a running one) and stop with the message.
fail() {
    show_log_tail "$(dir_of "$1")/postfix.log"
    down_one "$1" >/dev/null
    die "$2"
}

up_one() {
    local server=$1 dir port
    dir=$(dir_of "$server")
    if running "$server"; then
        log "postfix $server already running (pid $(master_pid "$server")) on ${IP[$server]}"
        return 0
    fi
    # (Not `ip ... | grep -q`: with pipefail, grep's early exit can make ip fail with SIGPIPE.)
    on_lo "${IP[$server]}"
    [ -s "$CERTS/mail.$server.test.crt" ] || die "no certificate $CERTS/mail.$server.test.crt (run 10-certs.sh up first)"
    configure "$server"
    local logfile="$dir/postfix.log" before=0
    [ -f "$logfile" ] && before=$(wc -l < "$logfile")
    postfix -c "$dir/etc" check >"$dir/start.out" 2>&1 || { cat "$dir/start.out" >&2; fail "$server" "postfix $server: configuration check failed"; }
    postfix -c "$dir/etc" start >>"$dir/start.out" 2>&1 || { cat "$dir/start.out" >&2; fail "$server" "postfix $server did not start"; }
    # smtpd needs Dovecot's SASL socket and exits at once without it, after which the master stops
    # starting smtpd for a while ("bad command startup -- throttling"). On a first start
    # 40-dovecot.sh has not made the socket yet: then only check that the master listens, without
    # connecting (a connection would start an smtpd); 40-dovecot.sh checks the greeting and AUTH
    # on every port once it is up. With the socket there, every port must greet with 220.
    if [ -S "$dir/spool/private/auth" ]; then
        for port in ${PORTS[$server]}; do
            wait_port "${IP[$server]}" "$port" 10 || fail "$server" "postfix $server does not listen on ${IP[$server]}:$port"
            greets "${IP[$server]}" "$port" || fail "$server" "postfix $server: no 220 greeting on ${IP[$server]}:$port"
        done
    else
        for port in ${PORTS[$server]}; do
            listens "${IP[$server]}" "$port" || fail "$server" "postfix $server does not listen on ${IP[$server]}:$port"
        done
    fi
    if tail -n +"$((before + 1))" "$logfile" | grep -q 'fatal:'; then
        fail "$server" "postfix $server: fatal errors in $logfile"
    fi
    log "postfix $server (pid $(master_pid "$server")) on ${IP[$server]}: ${PORTS[$server]// /,} (log $dir/postfix.log)"
}

down_one() {
    local server=$1 pid i
    running "$server" || return 0
    pid=$(master_pid "$server")
    postfix -c "$(dir_of "$server")/etc" stop >/dev/null 2>&1 || true
    # `postfix stop` only signals the master; wait until it (and so its listeners) is gone.
    for ((i = 0; i < 100; i++)); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    log "postfix $server stopped"
}

status_one() {
    local server=$1 port
    running "$server" || { log "postfix $server not running"; return 1; }
    [ -S "$(dir_of "$server")/spool/private/auth" ] || { log "postfix $server running, but no SASL socket (run 40-dovecot.sh up)"; return 1; }
    for port in ${PORTS[$server]}; do
        greets "${IP[$server]}" "$port" || { log "postfix $server running but no 220 greeting on ${IP[$server]}:$port"; return 1; }
    done
    log "postfix $server running (pid $(master_pid "$server")) on ${IP[$server]}: ${PORTS[$server]// /,}"
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
