#!/usr/bin/env bash
# Fetch highlight.js's prebuilt browser build into the dashboard's static files.
#
# The dashboard never loads code from a CDN: the minified ES module build of
# @highlightjs/cdn-assets (the "common" languages) and its LICENSE are committed under
# hosts/storykit_quart/ui/vendor/highlightjs/ and served with the other static files,
# under the page's Content-Security-Policy. Run this (`make vendor-highlightjs`) to
# reproduce or upgrade them: it takes the tarball from the npm registry with npm's own
# client, checks it against the integrity the registry publishes (pinned below), and
# copies the two files. To upgrade, change VERSION and INTEGRITY
# (`npm view @highlightjs/cdn-assets@<version> dist.integrity`), run it, commit.
set -euo pipefail

VERSION=11.12.0
INTEGRITY=sha512-KvOKXODaiFmId9xaq3xc5xCL66wVLUuOngDbO9B/kewbFTqdGbn2nJxNhN3H5R1cgDTVj6R8vH0zgiNDEGjpDw==
HERE=$(cd "$(dirname "$0")/.." && pwd)
DEST="$HERE/hosts/storykit_quart/ui/vendor/highlightjs"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "@highlightjs/cdn-assets@$VERSION" --silent >/dev/null)
tarball="$work/highlightjs-cdn-assets-$VERSION.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "integrity mismatch for @highlightjs/cdn-assets@$VERSION: $actual" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/es/highlight.min.js package/LICENSE
mkdir -p "$DEST"
cp "$work/package/es/highlight.min.js" "$DEST/highlight.min.js"
cp "$work/package/LICENSE" "$DEST/LICENSE"
echo "vendored @highlightjs/cdn-assets@$VERSION into $DEST"
