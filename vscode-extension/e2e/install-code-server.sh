#!/usr/bin/env bash
# Install code-server from the npm registry into a cache folder keyed by its version,
# once: later runs (and CI on the same machine) reuse it. Prints the install folder.
#
# code-server's own postinstall runs `npm install` inside lib/vscode, where the
# @vscode/ripgrep package downloads a ripgrep build from GitHub. That host is not
# reachable here, so we hand it Debian's `rg` instead: its download step looks in
# $TMPDIR/vscode-ripgrep-cache-<package version>/ for the archive before fetching.
# The two versions below belong to the pinned code-server; update them together
# (lib/vscode/npm-shrinkwrap.json → @vscode/ripgrep; its lib/postinstall.js → VERSION).
#
# Needs: node 20 (code-server 4.100.x refuses others), a C/C++ toolchain, python3 and
# the node headers for the native modules it builds, and `rg` (Debian: ripgrep).
set -euo pipefail

VERSION="${CODE_SERVER_VERSION:-4.100.3}"
RIPGREP_PACKAGE_VERSION="1.15.11"
RIPGREP_ASSET_VERSION="v13.0.0-10"

cache="${STORYKIT_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/storykit-e2e}"
dest="$cache/code-server-$VERSION"
entry="$dest/node_modules/code-server/out/node/entry.js"

if [ -f "$dest/.complete" ] && [ -f "$entry" ]; then
  echo "$dest"
  exit 0
fi

say() { echo "install-code-server: $*" >&2; }
die() { say "$*"; exit 1; }

node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" = 20 ] || die "code-server $VERSION needs node 20, this is node $node_major"
rg_bin="$(command -v rg || true)"
[ -n "$rg_bin" ] || die "ripgrep is missing: apt-get install ripgrep"
# Native modules are built from source (their prebuilt downloads are not reachable).
for tool in make g++ python3 pkg-config; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install build-essential python3 pkg-config"
done
[ -f /usr/include/gssapi/gssapi.h ] || die "the Kerberos headers are missing (for the kerberos module): apt-get install libkrb5-dev"

case "$(uname -m)" in
  x86_64) target="x86_64-unknown-linux-musl" ;;
  aarch64) target="aarch64-unknown-linux-musl" ;;
  *) die "no ripgrep target for $(uname -m)" ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work" "$dest.partial"' EXIT
rg_cache="$work/vscode-ripgrep-cache-$RIPGREP_PACKAGE_VERSION"
mkdir -p "$rg_cache" "$work/rg"
cp "$rg_bin" "$work/rg/rg"
tar -czf "$rg_cache/ripgrep-$RIPGREP_ASSET_VERSION-$target.tar.gz" -C "$work/rg" rg

rm -rf "$dest.partial"
mkdir -p "$dest.partial"
say "installing code-server $VERSION into $dest (a few minutes, once)"
started=$SECONDS
# unsafe_perm: code-server's postinstall refuses to run as root without it.
# nodedir: node-gyp uses the local headers instead of downloading them.
(
  cd "$dest.partial"
  if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then
    export npm_config_nodedir=/usr
  fi
  echo '{"private": true}' > package.json
  TMPDIR="$work" \
  npm_config_unsafe_perm=true \
  npm_config_yes=true \
  npm_config_ignore_scripts=false \
  npm_config_fund=false \
  npm_config_audit=false \
  npm_config_update_notifier=false \
    npm install --no-save --no-package-lock --loglevel=error "code-server@$VERSION" >&2
)
[ -f "$dest.partial/node_modules/code-server/out/node/entry.js" ] || die "install finished without code-server"
[ -x "$dest.partial/node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg" ] \
  || die "ripgrep was not installed into code-server"
rm -rf "$dest"
mv "$dest.partial" "$dest"
touch "$dest/.complete"
say "installed in $((SECONDS - started)) s"
echo "$dest"
