#!/usr/bin/env python3
"""The bookkeeping of bench/gpu-fused.sh (issue 16): one JSON line per measured row, one table.

  gpu_fused_rows.py known JARDIR KEY...        the config keys the jars' PretrainConfig knows
  gpu_fused_rows.py hanlin OUT PART NAME MB WORK SETTINGS
                                               a Hanlin run's row from WORK/metrics.jsonl and WORK.log
  gpu_fused_rows.py compiled OUT PART LOG      the compiled loop's JSON line in LOG
  gpu_fused_rows.py hf OUT PART LOG            hf_trainer_bench.py's RESULT line in LOG
  gpu_fused_rows.py curve A B                  two runs' losses, the mean of each 10 steps side by side
  gpu_fused_rows.py table FILE...              every row, with ratios to the compiled loop and HF

Tokens/s are timed over the steps after the first 10 (their tokens over their seconds), as
bench/vs-hf.sh does. MFU is recomputed for every row with one yardstick, Hanlin's and
hf_trainer_bench.py's: tokens/s x (6 N + 6 L T d) / 989e12 (N without the input embedding, T 2048,
the causal half of attention); the compiled loop's own figure (6 N + 12 L d T) is kept as mfu_own.
"""
import glob, json, os, re, statistics, sys, zipfile

PEAK = 989e12
T = 2048
SHAPES = {  # d, L, heads, kv heads, ff, V
    "tinyllama": (2048, 22, 32, 4, 5632, 32000),
    "llama2-7b": (4096, 32, 32, 32, 11008, 32000),
}


def flops_per_token(shape, attention=6):
    """6 N + attention x L T d: 6 counts the causal half of attention (Hanlin's and HF's yardstick),
    12 the whole square (PaLM's, and the compiled loop's own figure)."""
    d, layers, h, kv, ff, v = SHAPES[shape]
    hd = d // h
    per_layer = 2 * d * d + 2 * d * kv * hd + 3 * d * ff + 2 * d
    n = layers * per_layer + d + v * d  # no input embedding
    return 6 * n + attention * layers * T * d


def mfu(tps, shape, attention=6):
    return tps * flops_per_token(shape, attention) / PEAK


def append(out, row):
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    print("ROW " + json.dumps(row), flush=True)


def known(jar_dir, keys):
    """Keys whose name appears in the PretrainConfig class of one of the jars."""
    blobs = []
    for jar in glob.glob(os.path.join(jar_dir, "*.jar")):
        try:
            with zipfile.ZipFile(jar) as z:
                for name in z.namelist():
                    if name.endswith("train/PretrainConfig.class"):
                        blobs.append(z.read(name))
        except zipfile.BadZipFile:
            pass
    return [k for k in keys if any(k.encode() in b for b in blobs)]


def hanlin(out, part, name, mb, work, settings):
    log = open(work + ".log", encoding="utf-8", errors="replace").read() if os.path.exists(work + ".log") else ""
    row = {"part": part, "system": "hanlin", "name": name, "micro_batch": int(mb), "settings": settings}
    peak = re.findall(r"peak CUDA memory: ([\d.]+) GiB allocated", log)
    if peak:
        row["peak_gib"] = float(peak[-1])
    path = os.path.join(work, "metrics.jsonl")
    rows = [json.loads(l) for l in open(path)] if os.path.exists(path) else []
    rows = [r for r in rows if r.get("type") == "train"]
    steady = [r for r in rows if r["step"] > 10]
    if not steady:
        err = [l for l in log.splitlines() if re.search(r"rror|xception|Killed|out of memory", l)]
        row["error"] = (err[-1] if err else "no timed steps (see " + work + ".log)")[:300]
    else:
        tps = sum(r["tokens"] for r in steady) / sum(r["seconds"] for r in steady)
        shape = "llama2-7b" if part == "lora" else "tinyllama"
        row.update(tokens_per_s=round(tps), mfu=round(mfu(tps, shape), 4), steps_timed=len(steady),
                   last_loss=rows[-1]["loss"])
    append(out, row)


def compiled(out, part, log):
    text = open(log, encoding="utf-8", errors="replace").read()
    lines = [l for l in text.splitlines() if l.startswith('{"compiled_loop"')]
    if not lines:
        tail = [l for l in text.splitlines() if l.strip()][-1:] or ["no output"]
        mb = re.search(r"mb(\d+)", os.path.basename(log))
        append(out, {"part": part, "system": "compiled", "name": "torch.compile loop",
                     "micro_batch": int(mb.group(1)) if mb else None, "error": tail[0][:300]})
        return
    c = json.loads(lines[-1])["compiled_loop"]
    append(out, {"part": part, "system": "compiled", "name": "torch.compile loop", "micro_batch": c["micro_batch"],
                 "tokens_per_s": c["tokens_per_s"], "mfu": round(mfu(c["tokens_per_s"], "tinyllama"), 4),
                 "mfu_own": c["mfu"], "peak_gib": c["peak_gb"], "warmup_s": c["warmup_s"]})


def hf(out, part, log):
    text = open(log, encoding="utf-8", errors="replace").read()
    m = re.search(r"RESULT hf-trainer preset=(\S+) (\S+) tokens_per_s=(\d+) mfu=([\d.]+) peak_alloc_gib=([\d.]+)", text)
    name = "HF Trainer + PEFT" if part == "lora" else "HF Trainer"
    if not m:
        err = [l for l in text.splitlines() if re.search(r"rror|xception", l)]
        append(out, {"part": part, "system": "hf", "name": name, "error": (err[-1] if err else "no RESULT")[:300]})
        return
    tps = int(m.group(3))
    append(out, {"part": part, "system": "hf", "name": name + " (" + m.group(2) + ")",
                 "micro_batch": 1 if m.group(1) == "llama2-7b" else 4, "tokens_per_s": tps,
                 "mfu": round(mfu(tps, m.group(1)), 4), "peak_gib": float(m.group(5))})


def curve(a, b):
    def losses(work):
        return {r["step"]: r["loss"] for r in map(json.loads, open(os.path.join(work, "metrics.jsonl")))
                if r.get("type") == "train"}
    x, y = losses(a), losses(b)
    last = max(max(x, default=0), max(y, default=0))
    print(f"loss, mean of each 10 steps:  step  {os.path.basename(a):>10}  {os.path.basename(b):>10}  difference")
    worst = 0.0
    for end in range(10, last + 1, 10):
        xs = [x[s] for s in range(end - 9, end + 1) if s in x]
        ys = [y[s] for s in range(end - 9, end + 1) if s in y]
        if not xs or not ys:
            continue
        mx, my = statistics.mean(xs), statistics.mean(ys)
        worst = max(worst, abs(mx - my))
        print(f"                              {end:4d}  {mx:10.4f}  {my:10.4f}  {my - mx:+.4f}")
    print(f"CURVE largest difference of the 10-step means: {worst:.4f}")


def full(row):
    """The row's MFU with 12 L T d: the shape follows from the part (LoRA rows are the 7B shape)."""
    return mfu(row["tokens_per_s"], "llama2-7b" if row["part"] == "lora" else "tinyllama", attention=12)


def table(files):
    rows = []
    for f in files:
        rows += [json.loads(l) for l in open(f) if l.strip()]
    best = lambda system, mb=None, lora=False: max(
        (r["tokens_per_s"] for r in rows if r["system"] == system and "tokens_per_s" in r
         and (mb is None or r.get("micro_batch") == mb) and (r["part"] == "lora") == lora), default=None)
    print(f"{'part':6} {'system':9} {'name':34} {'mb':>3} {'tokens/s':>9} {'MFU':>6} {'MFU12':>6} {'peak GiB':>8}  "
          f"{'/compiled same mb':>17} {'/compiled best':>14} {'/HF':>6}")
    for r in rows:
        if "tokens_per_s" not in r:
            print(f"{r['part']:6} {r['system']:9} {r['name'][:34]:34} {str(r.get('micro_batch', '')):>3}  "
                  f"ERROR {r.get('error', '')}")
            continue
        tps = r["tokens_per_s"]
        same = best("compiled", r.get("micro_batch"))
        top = best("compiled")
        hfb = best("hf", lora=r["part"] == "lora")
        ratio = lambda ref: f"{tps / ref:.3f}" if ref else "-"
        print(f"{r['part']:6} {r['system']:9} {r['name'][:34]:34} {str(r.get('micro_batch', '')):>3} {tps:9d} "
              f"{100 * r['mfu']:5.1f}% {100 * full(r):5.1f}% {r.get('peak_gib', float('nan')):8.2f}  "
              f"{ratio(same) if r['part'] != 'lora' else '-':>17} {ratio(top) if r['part'] != 'lora' else '-':>14} "
              f"{ratio(hfb):>6}")
    print("MFU: tokens/s x (6N + 6LTd) / 989e12 for every row; MFU12: the same with 12LTd (whole attention square,"
          " PaLM's convention and the compiled loop's own figure);"
          " ratios: this row's tokens/s over the compiled loop's at the same micro-batch, over its best, over HF Trainer's"
          " best (LoRA rows: over HF + PEFT).")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "known":
        print(" ".join(known(args[0], args[1:])))
    elif cmd == "hanlin":
        hanlin(*args)
    elif cmd == "compiled":
        compiled(*args)
    elif cmd == "hf":
        hf(*args)
    elif cmd == "curve":
        curve(*args)
    elif cmd == "table":
        table(args)
    else:
        sys.exit(__doc__)
