#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine: the system packages the tests and the demo use, Node >= 22 (see
# scripts/node-env) and the project's npm dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# slapd and ldap-utils: the test directory; swaks with its TLS and SASL Perl modules: a real SMTP client for
# the relay's end-to-end tests; postfix: the stock MTA the Dovecot-SASL front and XCLIENT are tested with
# (dev/postfix/ runs private instances on their own ports and folders); nginx with its mail module: the auth_http
# front's tests (dev/nginx/); redis-server: the brute-force store shared by replicas (dev/redis.ts runs private
# instances on free ports).
packages=(slapd ldap-utils openssl swaks libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl postfix nginx
  libnginx-mod-mail redis-server)
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

scripts/node-env node --version >/dev/null
scripts/node-env npm ci --no-audit --no-fund
