#!/usr/bin/python3
"""Hand-built chat-template ids, the reference ChatCommandTest checks Hanlin's chat against.

Llama2-Chinese's template "<s>Human: q\n</s><s>Assistant: a\n</s>" with <s>/</s> as the BOS/EOS
ids (1, 2), each turn encoded the way Hanlin's SftDataset encodes chat records for training:
[1] + sp("Role: " + content.lstrip() + "\n") + [2] (one text between the
special tokens, as HF's tokenizer encodes Llama2-Chinese's data), then [1] + sp("Assistant:") to prompt the
reply. sp is Meta's tokenizer.model through python3-sentencepiece (Debian's /usr/bin/python3).

usage: chat_ids.py TOKENIZER_MODEL TURNS_JSON   (TURNS_JSON: [["System"|"Human"|"Assistant", text], ...])
prints the prompt ids as a JSON list.
"""
import json
import sys

import sentencepiece as spm

sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f:
    turns = json.load(f)
ids = []
for role, text in turns:
    ids += [1] + sp.encode(role + ": " + text.lstrip() + "\n") + [2]
ids += [1] + sp.encode("Assistant:")
print(json.dumps(ids))
