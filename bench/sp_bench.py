#!/usr/bin/python3
"""Python sentencepiece's encode throughput, in TokenizerBench's ROW format.

usage: sp_bench.py THREADS SECONDS NAME=tokenizer.model[,...] CORPUS=FILE[,FILE...] ...
"""
import json
import sys
import time

import sentencepiece as spm


def read(path):
    if path.endswith(".jsonl"):
        return [json.loads(l)["t"] for l in open(path, encoding="utf-8") if l.strip()]
    return [l.rstrip("\n") for l in open(path, encoding="utf-8") if l.rstrip("\n")]


def timed(f, seconds, clock):
    f()  # warm-up
    t0, passes = clock(), 0
    while True:
        f()
        passes += 1
        s = clock() - t0
        if s >= seconds:
            return s / passes


threads, seconds = int(sys.argv[1]), float(sys.argv[2])
models, corpora = {}, {}
for arg in sys.argv[3:]:
    k, v = arg.split("=", 1)
    if v.endswith(".model"):
        models[k] = v
    else:
        corpora[k] = [d for f in v.split(",") for d in read(f)]
impl = f"sentencepiece {spm.__version__} (Python)"
for mname, path in models.items():
    sp = spm.SentencePieceProcessor(model_file=path)
    for cname, docs in corpora.items():
        nbytes = sum(len(d.encode("utf-8")) for d in docs)
        nchars = sum(len(d) for d in docs)
        tokens = sum(len(x) for x in sp.encode(docs))
        for n in (1, threads):
            if n == 1:  # CPU time of this thread, as TokenizerBench's one-thread rows
                s = timed(lambda: [sp.encode(d) for d in docs], seconds, time.thread_time)
            else:
                s = timed(lambda: sp.encode(docs, num_threads=n), seconds, time.perf_counter)
            print(f"ROW|{impl}|{n}|{mname}|{cname}|{nbytes / 1e6 / s:.1f}|"
                  f"{tokens / 1e6 / s:.2f}|{tokens / nchars:.3f}", flush=True)
