#!/usr/bin/env bash
# Fetches the cross-design emoji benchmark (dataset "emoji") from the npm registry:
# emoji-datasource-{google,twitter,facebook,apple} (MIT), keeping emoji.json and the 64-px PNGs.
#
#   scripts/fetch_emoji.sh DEST        # then: anil-edge train --dataset emoji --data DEST/*
#
# DEST/<vendor>/ then holds emoji.json and img/<vendor>/64/ (about 20-30 MB each).
set -euo pipefail
dest=${1:?usage: scripts/fetch_emoji.sh DEST}
version=${EMOJI_DATASOURCE_VERSION:-16.0.0}
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for vendor in google twitter facebook apple; do
    (cd "$tmp" && npm pack --silent "emoji-datasource-$vendor@$version" >/dev/null)
    mkdir -p "$dest/$vendor"
    tar xzf "$tmp/emoji-datasource-$vendor-$version.tgz" -C "$dest/$vendor" --strip-components=1 \
        package/emoji.json "package/img/$vendor/64"
    echo "$dest/$vendor: $(ls "$dest/$vendor/img/$vendor/64" | wc -l) images" >&2
done
