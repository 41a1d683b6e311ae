#!/usr/bin/env bash
# A private Exim for fronts/dovecot-sasl/exim.test.ts, without installing Exim: Debian's Exim and Postfix conflict
# (both provide mail-transport-agent) and the machine keeps Postfix. The exim4-daemon-heavy package (the light one
# has no dovecot authenticator) is downloaded, not installed, and unpacked into .toolchain/exim/; only the shared
# libraries it links are installed with apt. dev/exim/ runs that binary with its own configuration file, spool and
# log folder. Safe to run again; called by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=.toolchain/exim
binary="$target/usr/sbin/exim4"
package=exim4-daemon-heavy
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"

if [ -x "$binary" ] && "$binary" -C /dev/null -bV 2>/dev/null | grep -q '^Authenticators:.* dovecot'; then
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "setup-exim: downloading $package (not installing it) into $target" >&2
(cd "$work" && apt-get download -qq "$package" 2>/dev/null) || {
  $sudo apt-get update -qq
  (cd "$work" && apt-get download -qq "$package")
}
deb="$(echo "$work"/"$package"_*.deb)"

# The libraries the binary links, from the package's Depends (lib* names; exim4-base and debconf are left out:
# exim4-base would pull exim4-config and the conflicting Exim daemon).
missing=()
for dependency in $(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -E 's/\(.*\)//; s/\|.*//; s/[[:space:]]//g'); do
  case "$dependency" in
    lib*) dpkg -s "$dependency" >/dev/null 2>&1 || missing+=("$dependency") ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-exim: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

rm -rf "$target"
mkdir -p "$target"
dpkg-deb -x "$deb" "$target"
# The package's binary is setuid root; this copy is run by root (the tests) or not at all, so it needs no bit.
chmod u-s "$binary"
if ldd "$binary" | grep -q 'not found'; then
  echo "setup-exim: $binary lacks libraries:" >&2
  ldd "$binary" | grep 'not found' >&2
  exit 1
fi
"$binary" -C /dev/null -bV 2>/dev/null | sed -n 1p >&2
