#!/usr/bin/python3
"""Turns the downloaded packages (see setup.sh) into test documents for the tokenizer.

Writes DIR/<corpus>.jsonl, one {"t": text} document per line, plus plain-text training and
held-out files for vocabulary extension (zh_train.txt, zh_train_20k.txt,
zh_heldout_{modern,classical}.txt: every 10th document is held out). Deterministic: same packages in, same bytes out.

usage: prepare_corpus.py DOWNLOADS_DIR OUT_DIR
"""
import glob
import json
import os
import random
import re
import sys

dl, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def write(name, docs):
    n = chars = 0
    with open(os.path.join(out, name + ".jsonl"), "w", encoding="utf-8") as f:
        for d in docs:
            if not d:
                continue
            f.write(json.dumps({"t": d}, ensure_ascii=False) + "\n")
            n += 1
            chars += len(d)
    print(f"{name}: {n} documents, {chars} characters", file=sys.stderr)


def poems():
    root = os.path.join(dl, "chinese-poetry/package/dist")
    for sub in ["quantangshi", "songci", "yuanqu", "shijing", "lunyu", "sishuwujing", "chuci"]:
        for path in sorted(glob.glob(os.path.join(root, sub, "*.json"))):
            if "author" in os.path.basename(path) or "表面结构字" in path:
                continue
            data = json.load(open(path, encoding="utf-8"))
            for item in data if isinstance(data, list) else [data]:
                if not isinstance(item, dict):
                    continue
                lines = item.get("paragraphs") or item.get("content") or []
                lines = [x for x in lines if isinstance(x, str)]
                head = " ".join(
                    str(item[k]) for k in ("title", "chapter", "author") if item.get(k)
                )
                if lines:
                    yield (head + "\n" if head else "") + "\n".join(lines)


def fortunes(pkg, names=None, strip_ansi=False):
    root = os.path.join(dl, pkg, "usr/share/games/fortunes")
    for path in sorted(glob.glob(os.path.join(root, "*"))):
        base = os.path.basename(path)
        if base.endswith((".dat", ".u8")) or os.path.islink(path) or os.path.isdir(path):
            continue
        if names is not None and base not in names:
            continue
        text = open(path, encoding="utf-8", errors="replace").read()
        if strip_ansi:
            text = ANSI.sub("", text)
        for doc in re.split(r"\n%\n", text):
            yield doc.strip("%\n") if doc.strip() else ""


def sentences():
    for path in sorted(
        glob.glob(os.path.join(dl, "nlp-corpus/package/builds/doc-*.json")),
        key=lambda p: int(re.search(r"doc-(\d+)", p).group(1)),
    ):
        yield from json.load(open(path, encoding="utf-8"))


def code():
    # Real source text with its indentation, blank lines and tabs: the Python standard library.
    stdlib = sorted(glob.glob("/usr/lib/python3.[0-9]*/"))[0]  # Debian's, whatever its version
    for path in sorted(glob.glob(os.path.join(stdlib, "*.py"))):
        text = open(path, encoding="utf-8", errors="replace").read()
        chunk = []
        size = 0
        for block in re.split(r"(?<=\n)(?=\n)", text):
            chunk.append(block)
            size += len(block)
            if size > 2000:
                yield "".join(chunk)
                chunk, size = [], 0
        if chunk:
            yield "".join(chunk)


def emoji():
    for line in open("/usr/share/unicode/emoji/emoji-test.txt", encoding="utf-8"):
        line = line.rstrip("\n")
        if line:
            yield line
    data = json.load(open(os.path.join(dl, "unicode-emoji-json/package/data-by-emoji.json")))
    seqs = []
    for line in open("/usr/share/unicode/emoji/emoji-test.txt", encoding="utf-8"):
        m = re.match(r"^[0-9A-F ]+; fully-qualified\s+# (\S+)", line)
        if m:
            seqs.append(m.group(1))
    rnd = random.Random(7)
    for e, info in data.items():
        yield f"{e} {info['name']} ({info['group']})"
    for _ in range(3000):  # runs of emoji with ZWJ sequences, flags and skin tones adjacent
        yield "".join(rnd.choice(seqs) for _ in range(rnd.randint(1, 12)))


def mixed():
    # Synthetic edge cases: digits, odd whitespace, scripts side by side; seeded.
    rnd = random.Random(42)
    zh = "我爱北京天安门，今天天气很好。人工智能与大语言模型训练。"
    en = ["Hello", "world", "tokenizer", "Llama", "the", "of", "don't", "U.S.", "e-mail"]
    ws = [" ", "  ", "   ", "\t", "\n", "\n\n", " \n ", "\r\n", "\u3000", "\u00a0", "\u2028"]
    emo = ["🦙", "👨‍👩‍👧‍👦", "🇨🇳", "🇺🇸", "👍🏽", "❤️", "🏳️‍🌈", "😀"]
    for i in range(20000):
        parts = []
        for _ in range(rnd.randint(1, 20)):
            k = rnd.random()
            if k < 0.25:
                parts.append(str(rnd.randint(0, 10 ** rnd.randint(1, 15))))
            elif k < 0.45:
                parts.append(zh[rnd.randint(0, len(zh) - 5) :][: rnd.randint(1, 8)])
            elif k < 0.65:
                parts.append(rnd.choice(en))
            elif k < 0.85:
                parts.append(rnd.choice(ws))
            elif k < 0.95:
                parts.append(rnd.choice(emo))
            else:
                parts.append(chr(rnd.choice([rnd.randint(0x20, 0x2FFF), rnd.randint(0x10000, 0x1FAFF)])))
        yield "".join(parts)


poetry = list(poems())
zh_classical = poetry + list(fortunes("deb-fortunes-zh", {"tang300", "song100"}, True))
zh_modern = list(fortunes("deb-fortunes-zh", {"chinese"}, True))
write("zh_classical", zh_classical)
write("zh_modern", zh_modern)
write("en_fortunes", fortunes("deb-fortunes", None) if True else [])
write("en_fortunes_min", fortunes("deb-fortunes-min", None))
write("en_sentences", sentences())
write("code", code())
write("emoji", emoji())
write("mixed", mixed())

# Vocabulary extension: learn from 90 % of the Chinese documents, report on the other 10 %.
# zh_train_20k.txt (what VocabExtensionTest learns from, against committed goldens) comes from
# the pinned npm package alone, so a different Debian release cannot change it.
small = []
with open(os.path.join(out, "zh_train.txt"), "w", encoding="utf-8") as tr:
    for label, docs in (("modern", zh_modern), ("classical", zh_classical)):
        with open(os.path.join(out, f"zh_heldout_{label}.txt"), "w", encoding="utf-8") as ho:
            for i, d in enumerate(docs):
                line = d.replace("\n", " ").strip() + "\n"
                (ho if i % 10 == 0 else tr).write(line)
                if label == "classical" and i % 10 != 0 and len(small) < 20000 and i < len(poetry):
                    small.append(line)
with open(os.path.join(out, "zh_train_20k.txt"), "w", encoding="utf-8") as f:
    f.writelines(small)
