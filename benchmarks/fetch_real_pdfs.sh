#!/usr/bin/env bash
# Real-world PDFs that nobody here made: manuals and papers shipped in Debian's documentation packages
# (12 files, 3,173 pages: LaTeX manuals in English, French and Japanese, a 1,151-page C++ book, DocBook
# and gri references). Used by the ingest check and benchmark:  bash benchmarks/fetch_real_pdfs.sh DIR
set -euo pipefail
out=${1:-/tmp/real-pdfs}
work=$(mktemp -d)
mkdir -p "$out"
(cd "$work" && apt-get download -qq auto-multiple-choice-doc-pdf camlidl-doc c++-annotations-pdf \
    docbook-xsl-doc-pdf gri-pdf-doc)
for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/x"; done
find "$work/x" -iname '*.pdf' -exec cp {} "$out/" \;
find "$work/x" -iname '*.pdf.gz' -exec sh -c 'gunzip -c "$1" > "$2/$(basename "$1" .gz)"' _ {} "$out" \;
rm -rf "$work"
ls "$out"
