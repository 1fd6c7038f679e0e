#!/bin/sh
# Rebuild the map assets served from engine/web/static:
#   static/vendor/leaflet.js, leaflet.css   copied from the leaflet package
#   static/vendor/LICENSE-*.txt             licences of everything shipped
#   static/map.js                           src/map.js + @mapbox/vector-tile + pbf
#   static/vendor/map.js.LICENSES.txt       licences of what static/map.js bundles
#   static/vendor/uplot.js, uplot.css       copied from the uplot package (the
#                                           dashboard's charts): its IIFE build
#                                           dist/uPlot.iife.min.js (window.uPlot)
#                                           and dist/uPlot.min.css, unchanged
#   static/vendor/LICENSE-uplot.txt         uplot's LICENSE (MIT)
# Versions are pinned in package.json / package-lock.json. The output is
# deterministic: running this twice gives byte-identical files.
#
# Usage: cd engine/web && sh build-assets.sh   (or: npm run build)
set -eu

cd "$(dirname "$0")"

npm ci --no-audit --no-fund

NM=node_modules
OUT=static
VENDOR=static/vendor
mkdir -p "$VENDOR"

version() {
	node -p "require('./$NM/$1/package.json').version"
}

# Leaflet: the minified JS and the stylesheet, as published.
cp "$NM/leaflet/dist/leaflet.js" "$VENDOR/leaflet.js"
cp "$NM/leaflet/dist/leaflet.css" "$VENDOR/leaflet.css"

cp "$NM/leaflet/LICENSE" "$VENDOR/LICENSE-leaflet.txt"
cp "$NM/@mapbox/vector-tile/LICENSE.txt" "$VENDOR/LICENSE-vector-tile.txt"
cp "$NM/@mapbox/point-geometry/LICENSE" "$VENDOR/LICENSE-point-geometry.txt"
cp "$NM/pbf/LICENSE" "$VENDOR/LICENSE-pbf.txt"

# uPlot (the dispatcher dashboard's charts): the minified IIFE build and
# its stylesheet, as published.
cp "$NM/uplot/dist/uPlot.iife.min.js" "$VENDOR/uplot.js"
cp "$NM/uplot/dist/uPlot.min.css" "$VENDOR/uplot.css"
cp "$NM/uplot/LICENSE" "$VENDOR/LICENSE-uplot.txt"

VT=$(version @mapbox/vector-tile)
PG=$(version @mapbox/point-geometry)
PBF=$(version pbf)

# Our map code with the MVT decoder, as one minified IIFE (window.LastmileMap).
"$NM/.bin/esbuild" src/map.js \
	--bundle \
	--format=iife \
	--platform=browser \
	--target=es2018 \
	--minify \
	--legal-comments=none \
	--log-level=warning \
	"--banner:js=/*! LastmileMap. Bundles @mapbox/vector-tile@$VT (BSD-3-Clause), @mapbox/point-geometry@$PG (ISC), pbf@$PBF (BSD-3-Clause); licences in vendor/map.js.LICENSES.txt */" \
	--outfile="$OUT/map.js"

{
	echo "Third-party code bundled into static/map.js"
	echo "============================================"
	for p in "@mapbox/vector-tile:LICENSE.txt" "@mapbox/point-geometry:LICENSE" "pbf:LICENSE"; do
		name=${p%%:*}
		file=${p#*:}
		echo
		echo "$name@$(version "$name") ($(node -p "require('./$NM/$name/package.json').license"))"
		echo "------------------------------------------------------------"
		cat "$NM/$name/$file"
	done
} >"$VENDOR/map.js.LICENSES.txt"

echo
echo "file                                   bytes   gzip -9"
total_raw=0
total_gz=0
for f in "$VENDOR/leaflet.js" "$VENDOR/leaflet.css" "$OUT/map.js" "$OUT/map.css"; do
	raw=$(wc -c <"$f")
	gz=$(gzip -9 -c "$f" | wc -c)
	total_raw=$((total_raw + raw))
	total_gz=$((total_gz + gz))
	printf '%-36s %8d %9d\n' "$f" "$raw" "$gz"
done
printf '%-36s %8d %9d\n' "total (first view, before tiles)" "$total_raw" "$total_gz"

echo
echo "dashboard (besides the map files)     bytes   gzip -9"
total_raw=0
total_gz=0
for f in "$VENDOR/uplot.js" "$VENDOR/uplot.css" "$OUT/dashboard.js" "$OUT/live.js" "$OUT/dashboard.css"; do
	[ -f "$f" ] || continue
	raw=$(wc -c <"$f")
	gz=$(gzip -9 -c "$f" | wc -c)
	total_raw=$((total_raw + raw))
	total_gz=$((total_gz + gz))
	printf '%-36s %8d %9d\n' "$f" "$raw" "$gz"
done
printf '%-36s %8d %9d\n' "total" "$total_raw" "$total_gz"
