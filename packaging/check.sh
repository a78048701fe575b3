#!/usr/bin/env bash
# Builds the Debian package with cargo-deb, lists it, checks the unit with
# systemd-analyze (verify, and a security exposure of at most 2.0), and, as
# root on a machine without a real mensageria install, installs and purges
# the .deb to exercise the maintainer scripts. Run from .ci/run, or by hand
# from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0 # rust-version 1.85: fits the 1.95 toolchain
step() { echo "ci: $*"; }
t0=$SECONDS

# What the checks below run: on Debian 12 these are usually there already.
need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v adduser >/dev/null || need+=(adduser)
command -v deb-systemd-helper >/dev/null || need+=(init-system-helpers)
if [ ${#need[@]} -gt 0 ]; then
  step "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  step "installing cargo-deb $CARGO_DEB_VERSION"
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --quiet
  step "cargo-deb installed in $((SECONDS - t0)) s"
fi

t1=$SECONDS
step "building the .deb (release build)"
deb=$(cargo deb --locked --quiet | tail -n 1)
[ -f "$deb" ] || { echo "ci: cargo deb printed no package path (got: $deb)" >&2; exit 1; }
step "built $deb in $((SECONDS - t1)) s"
listing=$(dpkg-deb -c "$deb")
printf '%s\n' "$listing"
dpkg-deb -f "$deb" Package Version Depends
for path in ./usr/bin/mensageria ./lib/systemd/system/mensageria.service \
  ./etc/mensageria/mensageria.toml ./usr/share/doc/mensageria/README.md; do
  grep -q " $path\$" <<<"$listing" || { echo "ci: $path missing from $deb" >&2; exit 1; }
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/mensageria/mensageria.toml \
  || { echo "ci: /etc/mensageria/mensageria.toml is not a conffile" >&2; exit 1; }

# systemd-analyze verify wants the ExecStart binaries to exist: a copy of
# the unit pointing at the binary just built.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/bin/mensageria|$PWD/target/release/mensageria|g" systemd/mensageria.service \
  >"$tmp/mensageria.service"
step "systemd-analyze verify"
systemd-analyze verify "$tmp/mensageria.service"
step "systemd-analyze security (threshold 2.0)"
systemd-analyze security --offline=yes --threshold=20 systemd/mensageria.service | tail -n 1

# The maintainer scripts, for real: only where nothing else owns the name.
if [ "$(id -u)" = 0 ] && ! dpkg -s mensageria >/dev/null 2>&1 && [ ! -e /usr/bin/mensageria ] \
  && [ ! -e /var/lib/mensageria ] && [ ! -e /etc/mensageria ]; then
  step "installing and purging $deb"
  dpkg -i "$deb" >/dev/null
  ok=1
  getent passwd mensageria >/dev/null || { echo "ci: no mensageria user" >&2; ok=0; }
  [ "$(stat -c %U:%a /var/lib/mensageria)" = mensageria:750 ] || { echo "ci: /var/lib/mensageria wrong" >&2; ok=0; }
  [ "$(stat -c %U:%G:%a /etc/mensageria/mensageria.toml)" = root:mensageria:640 ] \
    || { echo "ci: config ownership wrong" >&2; ok=0; }
  [ -f /etc/mensageria/relay-password ] || { echo "ci: no relay-password file" >&2; ok=0; }
  su -s /bin/sh mensageria -c '/usr/bin/mensageria --config /etc/mensageria/mensageria.toml check-config' \
    || ok=0
  dpkg --purge mensageria >/dev/null
  [ ! -e /etc/mensageria ] || { echo "ci: purge left /etc/mensageria" >&2; ok=0; }
  rm -rf /var/lib/mensageria
  [ "$ok" = 1 ] || exit 1
fi
step "packaging checks done in $((SECONDS - t0)) s"
