#!/usr/bin/python3
"""Writes SentencePiece goldens for the Java tokenizer's parity tests.

For every CORPUS_DIR/<name>.jsonl ({"t": text} per line) writes OUT_DIR/<name>.golden.jsonl with
{"t": text, "ids": [...], "dec": text} per line, where ids = sp.encode(text) (no BOS/EOS) and
"dec" = sp.decode(ids) is present only where it differs from text. Also writes
quick.golden.jsonl, an evenly spaced sample of every corpus (a few MB) that the default
`mvn test` checks, and provenance.json (versions, model md5, command).

Reference: Debian python3-sentencepiece (run with /usr/bin/python3).
usage: make_goldens.py TOKENIZER_MODEL CORPUS_DIR OUT_DIR
"""
import glob
import hashlib
import json
import os
import platform
import sys

import sentencepiece as spm

model, corpus, out = sys.argv[1:4]
sp = spm.SentencePieceProcessor(model_file=model)
# Characters per corpus in the quick sample; the full files hold everything.
QUICK = {"zh_classical": 1_200_000, "zh_modern": 400_000, "en_sentences": 500_000,
         "en_fortunes": 500_000, "en_fortunes_min": 100_000, "code": 500_000,
         "emoji": 300_000, "mixed": 300_000}

totals = {}
with open(os.path.join(out, "quick.golden.jsonl.tmp"), "w", encoding="utf-8") as quick:
    for path in sorted(glob.glob(os.path.join(corpus, "*.jsonl"))):
        name = os.path.basename(path)[: -len(".jsonl")]
        docs = [json.loads(line)["t"] for line in open(path, encoding="utf-8")]
        chars = sum(len(d) for d in docs)
        step = max(1, round(chars / QUICK.get(name, 200_000)))
        n_tokens = n_roundtrip = 0
        tmp = os.path.join(out, name + ".golden.jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for i, text in enumerate(docs):
                ids = sp.encode(text)
                rec = {"t": text, "ids": ids}
                dec = sp.decode(ids)
                if dec != text:
                    rec["dec"] = dec
                else:
                    n_roundtrip += 1
                n_tokens += len(ids)
                line = json.dumps(rec, ensure_ascii=False) + "\n"
                f.write(line)
                if i % step == 0:
                    quick.write(line)
        os.replace(tmp, os.path.join(out, name + ".golden.jsonl"))
        totals[name] = {"documents": len(docs), "characters": chars, "tokens": n_tokens,
                        "round_trip": n_roundtrip}
        print(f"{name}: {totals[name]}", file=sys.stderr)
os.replace(os.path.join(out, "quick.golden.jsonl.tmp"), os.path.join(out, "quick.golden.jsonl"))

with open(os.path.join(out, "provenance.json"), "w") as f:
    json.dump({
        "generator": "test-data/tokenizer/make_goldens.py",
        "command": " ".join(["/usr/bin/python3"] + sys.argv),
        "sentencepiece": spm.__version__,
        "python": platform.python_version(),
        "model_md5": hashlib.md5(open(model, "rb").read()).hexdigest(),
        "corpora": totals,
    }, f, indent=1)
