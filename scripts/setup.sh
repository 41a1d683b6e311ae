#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine: the system packages the tests and the demo use, Node >= 22 (see
# scripts/node-env) and the project's npm dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# slapd and ldap-utils: the test directory; swaks with its TLS and SASL Perl modules: a real SMTP client for
# the relay's end-to-end tests; postfix: the stock MTA the Dovecot-SASL front and XCLIENT are tested with
# (dev/postfix/ runs private instances on their own ports and folders); nginx with its mail module: the auth_http
# front's tests (dev/nginx/); redis-server: the brute-force store shared by replicas (dev/redis.ts runs private
# instances on free ports); dovecot-core and dovecot-ldap: Dovecot's auth service, the benchmark's peer for SASL
# decisions and Postfix's SASL (dev/dovecot.ts runs private auth-only instances on free ports).
packages=(slapd ldap-utils openssl swaks libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl postfix nginx
  libnginx-mod-mail redis-server dovecot-core dovecot-ldap)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# npm fetches Node 24 when the machine's Node is too old (scripts/node-env); Debian's npm is enough for that.
command -v npm >/dev/null || missing+=(npm)
# The relay tests also drive Python's smtplib.
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # "No configuration": the package writes no /etc/postfix/main.cf, so no system Postfix starts or takes port 25.
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts a system slapd on install; smtpgate runs its own throw-away instances and does not need it.
# Likewise a system nginx (port 80, no mail block): the tests run private ones (nginx -p DIR) on free ports, and a
# system redis-server on 6379: the tests start their own.
# A system Dovecot (IMAP/POP3 on 143/110 once configured) is stopped and disabled: the tests and the benchmark run
# private ones with their own base_dir and ports, which a running one would not disturb either way.
if dpkg -s dovecot-core >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now dovecot >/dev/null 2>&1 || true
  else
    $sudo service dovecot stop >/dev/null 2>&1 || true
  fi
fi

# Exim for the Dovecot-SASL front's Exim test, unpacked, not installed (it conflicts with Postfix as a package).
scripts/setup-exim.sh

scripts/node-env node --version >/dev/null
# A worktree's node_modules may be a link to the main checkout's: `npm ci` would empty the folder it points to
# (every checkout sharing it at once) and make a private copy, so it is left alone then.
if [ -L node_modules ]; then
  echo "setup: node_modules links to $(readlink node_modules): run scripts/setup.sh in that checkout for npm ci" >&2
else
  scripts/node-env npm ci --no-audit --no-fund
fi
