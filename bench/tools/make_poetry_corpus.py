#!/usr/bin/env python3
"""Writes .gpu/poetry.txt.gz: the first 12 MB of chinese-poetry text (全唐诗, 宋词, 元曲, 诗经, 论语),
one poem per line, used by the GPU pretraining and SFT benchmarks.
Needs test-data/tokenizer/setup.sh to have downloaded npm chinese-poetry@2.0.1.
usage: python3 bench/tools/make_poetry_corpus.py [out=.gpu/poetry.txt.gz]
"""
import glob, gzip, json, os, sys

base = "test-data/assets/downloads/chinese-poetry/package/dist"
out_path = sys.argv[1] if len(sys.argv) > 1 else ".gpu/poetry.txt.gz"
os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
limit, size = 12_000_000, 0
with gzip.open(out_path, "wt", encoding="utf-8") as out:
    for sub in ["quantangshi", "songci", "yuanqu", "shijing", "lunyu"]:
        for f in sorted(glob.glob(f"{base}/{sub}/*.json")):
            try:
                data = json.load(open(f, encoding="utf-8"))
            except ValueError:
                continue
            for poem in data if isinstance(data, list) else [data]:
                if not isinstance(poem, dict):
                    continue
                paras = poem.get("paragraphs") or poem.get("content") or []
                if isinstance(paras, str):
                    paras = [paras]
                text = "".join(p for p in paras if isinstance(p, str)).strip()
                if text and size < limit:
                    out.write(text + "\n")
                    size += len(text.encode()) + 1
print(f"wrote {size:,} bytes of text to {out_path}")
