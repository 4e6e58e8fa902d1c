#!/usr/bin/env bash
# Lab certificates, made with openssl on first `up` and kept (never committed):
#   lab/run/ca.pem                      the lab CA every audit trusts (--ca-file)
#   lab/run/certs/<name>.crt|.key       RSA-2048 leaves signed by the CA, SAN DNS + IP:
#       mail.hardened.test (127.0.0.10)  mail.weak.test (127.0.0.20)
#       mta-sts.hardened.test (127.0.0.11)  mta-sts.weak.test (127.0.0.21)
#   lab/run/certs/weak-*.crt|.key       faulty certificates for the weak server's extra TLS ports:
#       weak-selfsigned (not from the CA), weak-wrongname (wrong.example.org), weak-expiring
#       (10 days left, inside the 21-day warning window), weak-rsa1024 (1024-bit key)
#   lab/run/certs/dh.pem                RFC 7919 ffdhe2048 group for Dovecot's DHE suites
# Only missing (or no longer valid) files are made again; `down` keeps them.
# Usage: 10-certs.sh up | down | status
set -euo pipefail
COMPONENT=${COMPONENT:-10-certs}
source "$(dirname "$0")/../lib.sh"

DIR="$RUN_DIR/certs"
CA="$RUN_DIR/ca.pem"
CA_KEY="$DIR/ca.key"
# name -> SAN; the IP SANs let clients that connect by address (the API simulator on
# https://127.0.0.10, nginx on .11/.21) validate too.
declare -A LEAVES=(
    [mail.hardened.test]="DNS:mail.hardened.test,IP:$HARDENED_IP"
    [mail.weak.test]="DNS:mail.weak.test,IP:$WEAK_IP"
    [mta-sts.hardened.test]="DNS:mta-sts.hardened.test,IP:$HARDENED_WEB_IP"
    [mta-sts.weak.test]="DNS:mta-sts.weak.test,IP:$WEAK_WEB_IP"
)
LEAF_DAYS=825
EXPIRING_DAYS=10
# The expiring certificate is re-made once fewer than this many days are left, so it always sits
# inside the 21-day warning window but is never simply expired.
EXPIRING_RENEW_DAYS=7

# sign NAME SAN DAYS BITS: key + CA-signed certificate $DIR/NAME.{key,crt} for CN/SAN.
sign() {
    local name=$1 san=$2 days=$3 bits=$4 cn=${2%%,*}
    cn=${cn#DNS:}
    openssl req -new -newkey "rsa:$bits" -nodes -keyout "$DIR/$name.key" -subj "/O=mailaudit lab/CN=$cn" \
        -out "$DIR/$name.csr" 2>/dev/null
    # AKI/SKI and key usages make the leaves pass strict X.509 checks (Python's VERIFY_X509_STRICT).
    openssl x509 -req -in "$DIR/$name.csr" -CA "$CA" -CAkey "$CA_KEY" -set_serial "0x$(openssl rand -hex 12)" \
        -days "$days" -sha256 -out "$DIR/$name.crt" -extfile <(printf '%s\n' \
            "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=serverAuth" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" \
            "subjectAltName=$san") 2>/dev/null
    rm -f "$DIR/$name.csr"
    chmod 0600 "$DIR/$name.key"
    log "made $name.crt (${bits}-bit RSA, $days days, $san)"
}

# from_ca NAME: the certificate exists and chains to the current CA (a re-made CA invalidates it).
from_ca() { [ -s "$DIR/$1.key" ] && openssl verify -CAfile "$CA" "$DIR/$1.crt" >/dev/null 2>&1; }

up() {
    mkdir -p "$DIR"
    chmod 0755 "$DIR"
    if [ ! -s "$CA" ] || [ ! -s "$CA_KEY" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout "$CA_KEY" -out "$CA" \
            -subj "/O=mailaudit lab/CN=mailaudit lab CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -addext "subjectKeyIdentifier=hash" 2>/dev/null
        chmod 0600 "$CA_KEY"
        log "made lab CA $CA"
    fi
    local name made=0
    for name in "${!LEAVES[@]}"; do
        from_ca "$name" || { sign "$name" "${LEAVES[$name]}" "$LEAF_DAYS" 2048; made=1; }
    done
    from_ca weak-wrongname || { sign weak-wrongname "DNS:wrong.example.org" "$LEAF_DAYS" 2048; made=1; }
    from_ca weak-rsa1024 || { sign weak-rsa1024 "DNS:mail.weak.test,IP:$WEAK_IP" "$LEAF_DAYS" 1024; made=1; }
    if ! from_ca weak-expiring || ! openssl x509 -in "$DIR/weak-expiring.crt" -noout \
            -checkend $((EXPIRING_RENEW_DAYS * 86400)) >/dev/null; then
        sign weak-expiring "DNS:mail.weak.test,IP:$WEAK_IP" "$EXPIRING_DAYS" 2048; made=1
    fi
    if [ ! -s "$DIR/weak-selfsigned.crt" ] || [ ! -s "$DIR/weak-selfsigned.key" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$LEAF_DAYS" \
            -keyout "$DIR/weak-selfsigned.key" -out "$DIR/weak-selfsigned.crt" \
            -subj "/O=mailaudit lab/CN=mail.weak.test" \
            -addext "subjectAltName=DNS:mail.weak.test,IP:$WEAK_IP" 2>/dev/null
        chmod 0600 "$DIR/weak-selfsigned.key"
        log "made weak-selfsigned.crt (self-signed, not from the lab CA)"; made=1
    fi
    if [ ! -s "$DIR/dh.pem" ]; then
        openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out "$DIR/dh.pem" 2>/dev/null
        log "made dh.pem (ffdhe2048)"; made=1
    fi
    [ "$made" = 1 ] || log "certificates present in $DIR (CA $CA)"
}

# Certificates are not a process: down keeps them (delete lab/run/certs and lab/run/ca.pem to re-make).
down() { :; }

status() {
    [ -s "$CA" ] || { log "no lab CA at $CA"; return 1; }
    local f
    for f in "$DIR"/*.crt; do
        log "$(basename "$f"): $(openssl x509 -in "$f" -noout -enddate | cut -d= -f2)"
    done
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
