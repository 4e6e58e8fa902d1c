#!/usr/bin/env bash
# Benchmark, not a test: the suite's DNS checks vs the checkdmarc CLI on the lab domains.
# Needs the lab (lab/up). Runs each tool N times (default 5) and prints wall times and verdicts.
#
# Both tools ask Unbound (127.0.0.54). checkdmarc also resolves names through the system resolver
# (MTA-STS download via requests), so it runs in a private mount namespace whose /etc/resolv.conf
# points at the lab resolver: nothing leaves loopback, and the machine's files are not touched.
# checkdmarc 5.17.1 beside cryptography 46 (pinned by sslyze) crashes in its DNSSEC test
# (dnspython 2.9 needs cryptography >= 50 for DNSSEC validation), so that test is stubbed out.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$here"
runs=${1:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'nameserver 127.0.0.54\n' > "$tmp/resolv.conf"
cat > "$tmp/checkdmarc_cli.py" <<'EOF'
import sys
import checkdmarc
checkdmarc.test_dnssec = lambda *a, **k: None  # needs cryptography >= 50 (see the script's header)
from checkdmarc._cli import _main
sys.exit(_main())
EOF

ms() { date +%s%N; }
elapsed() { echo $(( ($(ms) - $1) / 1000000 )); }

echo "== checkdmarc CLI (-n 127.0.0.54 --skip-tls), $runs runs"
for ((i = 1; i <= runs; i++)); do
    t=$(ms)
    unshare -m sh -c "mount --bind '$tmp/resolv.conf' /etc/resolv.conf && \
        REQUESTS_CA_BUNDLE='$here/lab/run/ca.pem' .venv/bin/python '$tmp/checkdmarc_cli.py' \
        --skip-tls -n 127.0.0.54 -f json hardened.test weak.test" > "$tmp/checkdmarc.json"
    echo "  run $i: $(elapsed "$t") ms"
done
.venv/bin/python - "$tmp/checkdmarc.json" <<'EOF'
import json, sys
for d in json.load(open(sys.argv[1])):
    spf, dmarc, sts, rpt = d["spf"], d["dmarc"], d["mta_sts"], d["smtp_tls_reporting"]
    print(f"  {d['domain']}:")
    print(f"    spf   valid={spf['valid']} lookups={spf.get('dns_lookups')} void={spf.get('void_dns_lookups')} "
          f"error={spf.get('error')}")
    print(f"    dmarc valid={dmarc['valid']} error={dmarc.get('error')} "
          f"p={(dmarc.get('tags') or {}).get('p', {}).get('value')}")
    print(f"    mx    {[h['hostname'] for h in d['mx'].get('hosts', [])]} warnings={d['mx'].get('warnings')}")
    print(f"    mta-sts valid={sts['valid']} mode={(sts.get('policy') or {}).get('mode')} error={sts.get('error')}")
    print(f"    tls-rpt valid={rpt['valid']} error={rpt.get('error')}")
EOF

# checkdmarc does no DANE (and its SMTP/TLS probe is skipped), so the suite's DANE test (a STARTTLS
# to port 25) is left out of the timing by default; DANE=1 includes it.
scope=(tests_dns --ignore=tests_dns/test_dane.py)
[ "${DANE:-0}" = 1 ] && scope=(tests_dns)
echo "== mailaudit ${scope[*]} via lab/audit (Unbound, lab policy), $runs runs per server"
for profile in hardened weak; do
    for ((i = 1; i <= runs; i++)); do
        t=$(ms)
        lab/audit "$profile" --dns-server 127.0.0.54 --policy lab/dns/lab-policy.yaml "${scope[@]}" -q \
            -p no:cacheprovider --html="$tmp/$profile.html" --results-json="$tmp/$profile.json" > "$tmp/$profile.out" || true
        echo "  $profile run $i: $(elapsed "$t") ms ($(grep -Eo '[0-9.]+s( |$)' "$tmp/$profile.out" | tail -1 | tr -d ' ') inside pytest)"
    done
    .venv/bin/python - "$tmp/$profile.json" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"    {r['requirement']:<26} {r['variant']:<11} {r['outcome']:<8} {r['message'][:110]}")
EOF
done
