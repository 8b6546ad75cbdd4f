#!/usr/bin/env python3
"""Builds the small SFT fixtures in this folder from real text: the Analects chapters in
../data/lunyu.json (public-domain text via npm chinese-poetry@2.0.1, MIT). Standard library only:
    python3 test-data/sft/make_sft_fixture.py
Each paragraph "X曰：“...”" becomes a question (who said it, in which chapter, and its first
clause) and an answer (the rest of the saying); consecutive pairs become two-turn chats.
"""
import csv, json, os, re

HERE = os.path.dirname(os.path.abspath(__file__))
chapters = json.load(open(os.path.join(HERE, "..", "data", "lunyu.json"), encoding="utf-8"))
pairs = []
for ch in chapters:
    for p in ch["paragraphs"]:
        m = re.match(r"^(.{1,12}?)曰：“(.+)”$", p)
        if not m:
            continue
        speaker, saying = m.group(1), m.group(2)
        cut = re.search(r"[，；：？！。]", saying)
        if not cut or cut.end() >= len(saying):
            continue
        head, rest = saying[: cut.end()], saying[cut.end():]
        pairs.append({"input": f"《论语·{ch['chapter']}》中，{speaker}说“{head}”，下文是什么？",
                      "target": rest})

with open(os.path.join(HERE, "lunyu_qa.jsonl"), "w", encoding="utf-8") as f:
    for q in pairs:
        f.write(json.dumps(q, ensure_ascii=False) + "\n")

with open(os.path.join(HERE, "lunyu_chat.csv"), "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f)
    w.writerow(["text"])
    for a, b in zip(pairs[0::2], pairs[1::2]):
        w.writerow([f"<s>Human: {a['input']}\n</s><s>Assistant: {a['target']}\n</s>"
                    f"<s>Human: {b['input']}\n</s><s>Assistant: {b['target']}\n</s>"])

with open(os.path.join(HERE, "lunyu_alpaca.json"), "w", encoding="utf-8") as f:
    json.dump([{"instruction": "续写《论语》中的这句话。", "input": q["input"].split("说")[1].split("，下文")[0],
                "output": q["target"]} for q in pairs], f, ensure_ascii=False, indent=1)
print(len(pairs), "pairs")
