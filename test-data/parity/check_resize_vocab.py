#!/usr/bin/env python3
"""Loads a folder written by `--mode resize-vocab` with transformers and compares with Hanlin.

The folder also holds hanlin_logits.safetensors (input_ids, logits computed by Hanlin on the
resized model, for text whose ids include the new pieces). Checks: transformers loads it with no
missing/unexpected keys and the extended vocabulary size; its logits equal Hanlin's (<= 1e-4) on
ids that include new pieces; transformers' tokenizer (tokenizer.json) and sentencepiece
(tokenizer.model) give Hanlin's ids for the same text.

How the folder was made (2026-12-01, result in ../../bench/results/2026-12-01-resize-vocab-transformers.log):
  bin/trainer --mode pretrain                                   # the demo model, 4,000 pieces
  bin/trainer --mode extend-vocab --tokenizer output/pretrain-demo/tokenizer.model \
      --corpus configs/demo/songci.txt --vocab-size 4300 --min-frequency 2 --output /tmp/rv/ext
  bin/trainer --mode resize-vocab --model output/pretrain-demo --tokenizer /tmp/rv/ext --output /tmp/rv/resized
  java --enable-native-access=ALL-UNNAMED -cp 'cli/target/trainer.jar:cli/target/lib/*' \
      test-data/parity/ResizeLogits.java /tmp/rv/resized 春风又绿江南岸，明月何时照我还。
usage: python3 check_resize_vocab.py FOLDER   (run where transformers is: the GPU machine)
"""
import sys

import sentencepiece as spm
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

d = sys.argv[1]
model, info = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, output_loading_info=True)
problems = {k: v for k, v in info.items() if v}
ref = load_file(f"{d}/hanlin_logits.safetensors")
ids = ref["input_ids"]
with torch.no_grad():
    logits = model.eval()(ids).logits
diff = (logits - ref["logits"]).abs().max().item()
tok = AutoTokenizer.from_pretrained(d)
text = tok.decode(ids[0, 1:].tolist())
hf_ids = tok(text)["input_ids"]
sp_ids = [1] + spm.SentencePieceProcessor(model_file=f"{d}/tokenizer.model").encode(text)
hanlin = ids[0].tolist()
new = sum(i >= 4000 for i in hanlin)
print(f"RESULT resize-vocab vocab={model.config.vocab_size} embed_rows={model.get_input_embeddings().weight.shape[0]} "
      f"loading_info_problems={problems} max_abs_dlogits={diff:.3g} new_piece_ids={new} "
      f"hf_tokenizer_ids_equal={hf_ids == hanlin} sentencepiece_ids_equal={sp_ids == hanlin}")
ok = not problems and diff <= 1e-4 and hf_ids == hanlin and sp_ids == hanlin and new > 0
sys.exit(0 if ok else 1)
