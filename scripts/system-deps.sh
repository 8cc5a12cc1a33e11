#!/usr/bin/env bash
# System packages the test suite uses, installed only when missing.
# Debian package → the command that shows it is there.
set -euo pipefail

declare -A wanted=(
  [git]=git
  [chromium]=chromium        # the dashboard's browser tests (Playwright drives /usr/bin/chromium)
  [prometheus]=promtool      # promtool check metrics, and a real Prometheus scraping the app
  [wrk]=wrk                  # the HTTP benchmark's load generator
  [haproxy]=haproxy          # the team tests: replicas behind a real load balancer
  [ripgrep]=rg               # code-server's @vscode/ripgrep, for the extension's e2e test
  [libkrb5-dev]=krb5-config  # code-server's native modules
  [pkg-config]=pkg-config
  [build-essential]=g++
  [nodejs]=node              # the VS Code extension's build and tests
  [npm]=npm
)

missing=()
for pkg in "${!wanted[@]}"; do
  command -v "${wanted[$pkg]}" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing system packages: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# apt does not start services here, and the tests start Prometheus themselves.
