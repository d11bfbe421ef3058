#!/usr/bin/env bash
# Vendor the gateway web page's third-party front-end files.
#
# The gateway embeds its page assets into the binary with include_bytes!
# (src/gateway/web/assets.rs), so the files under src/gateway/web/vendor/ are
# committed: building the crate needs neither npm nor network, and the page
# works offline (no CDN at runtime).
#
# The versions are pinned exactly in web/package.json (and web/package-lock.json).
# Re-run this script after changing web/package.json, and commit the updated
# web/package-lock.json together with the regenerated vendor/ files.
#
# Copied: xterm.js UMD script + CSS, the fit add-on UMD script,
# asciinema-player's self-contained browser bundle (global `AsciinemaPlayer`,
# terminal emulator embedded as WASM) + CSS, and each package's LICENSE.
# solid-js is compiled into the asciinema-player bundle, so its MIT licence
# is shipped as well. `//# sourceMappingURL=` lines are stripped because
# source maps are not shipped.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
web="$root/web"
nm="$web/node_modules"
out="$root/src/gateway/web/vendor"

(cd "$web" && npm ci --no-audit --no-fund)

mkdir -p "$out"

# copy SRC DEST-NAME, dropping source-map comment lines (JS `//# ...`, CSS `/*# ... */`).
copy_stripped() {
    local src="$1" dest="$out/$2"
    [[ -f "$src" ]] || { echo "missing: $src" >&2; exit 1; }
    grep -vE '^[[:space:]]*(//[#@] sourceMappingURL=|/\*[#@] sourceMappingURL=.*\*/[[:space:]]*$)' "$src" >"$dest" || true
    [[ -s "$dest" ]] || { echo "empty after stripping: $dest" >&2; exit 1; }
}

copy_license() {
    local src="$1" dest="$out/$2"
    [[ -f "$src" ]] || { echo "missing: $src" >&2; exit 1; }
    cp "$src" "$dest"
}

copy_stripped "$nm/@xterm/xterm/lib/xterm.js" xterm.js
copy_stripped "$nm/@xterm/xterm/css/xterm.css" xterm.css
copy_stripped "$nm/@xterm/addon-fit/lib/addon-fit.js" addon-fit.js
copy_stripped "$nm/asciinema-player/dist/bundle/asciinema-player.min.js" asciinema-player.min.js
copy_stripped "$nm/asciinema-player/dist/bundle/asciinema-player.css" asciinema-player.css

copy_license "$nm/@xterm/xterm/LICENSE" LICENSE.xterm
copy_license "$nm/@xterm/addon-fit/LICENSE" LICENSE.addon-fit
copy_license "$nm/asciinema-player/LICENSE" LICENSE.asciinema-player
copy_license "$nm/solid-js/LICENSE" LICENSE.solid-js

if grep -l 'sourceMappingURL=' "$out"/*.js "$out"/*.css; then
    echo "source map reference left in the files above" >&2
    exit 1
fi

echo "vendored into ${out#"$root"/}:"
(cd "$out" && wc -c -- *)
