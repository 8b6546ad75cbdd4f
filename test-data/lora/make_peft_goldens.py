#!/usr/bin/env python3
"""Writes the PEFT reference adapters and outputs that Hanlin's LoRA parity test checks.

For each case below: PEFT's get_peft_model on the committed random-init parity model
(test-data/parity/gqa by default), LoRA B weights (and any modules_to_save) set to random
non-zero values with a fixed seed so the adapter changes the outputs, saved with
PeftModel.save_pretrained (adapter_config.json + adapter_model.safetensors), then the fp32
logits for fixed ids of (a) base + adapter (PeftModel forward) and (b) merge_and_unload().

Run on a machine with torch + transformers + peft, from the repository root:
    python3 test-data/lora/make_peft_goldens.py test-data/parity/gqa test-data/lora
and commit OUTDIR/<case>/ and OUTDIR/provenance.json. LoraPeftParityTest reads them.
"""
import datetime, json, os, platform, sys

import torch
import transformers
import peft
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaForCausalLM

BASE = sys.argv[1] if len(sys.argv) > 1 else "test-data/parity/gqa"
OUT = sys.argv[2] if len(sys.argv) > 2 else "test-data/lora"
CASES = {
    # every linear layer of every block, alpha / r scaling
    "gqa_all": dict(r=4, lora_alpha=8, lora_dropout=0.0,
                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                    "gate_proj", "up_proj", "down_proj"]),
    # rsLoRA (alpha / sqrt(r)) on two modules, with embed_tokens and lm_head trained and saved
    "gqa_rs_save": dict(r=8, lora_alpha=16, lora_dropout=0.0, use_rslora=True,
                        target_modules=["q_proj", "v_proj"],
                        modules_to_save=["embed_tokens", "lm_head"]),
}


def one_case(i, name, kw):
    torch.manual_seed(2000 + i)
    base = LlamaForCausalLM.from_pretrained(BASE, torch_dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(3000 + i)
    ids = torch.randint(3, base.config.vocab_size, (2, 24), generator=g)
    with torch.no_grad():
        plain = base(ids).logits.float()
    model = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", **kw))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:  # PEFT starts B at zero; make the adapter matter
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
            elif "modules_to_save" in n:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
    d = os.path.join(OUT, name)
    model.save_pretrained(d, safe_serialization=True)
    model.eval()
    with torch.no_grad():
        adapted = model(ids).logits.float()
    # reload from disk, as a user would, to check what was saved
    fresh = LlamaForCausalLM.from_pretrained(BASE, torch_dtype=torch.float32).eval()
    loaded = PeftModel.from_pretrained(fresh, d).eval()
    with torch.no_grad():
        reloaded = loaded(ids).logits.float()
        merged = loaded.merge_and_unload()(ids).logits.float()
    save_file({"input_ids": ids.contiguous(), "logits_adapter": adapted.contiguous(),
               "logits_merged": merged.contiguous()},
              os.path.join(d, "goldens.safetensors"), metadata={"format": "pt"})
    return {"max_abs_adapter_vs_base": (adapted - plain).abs().max().item(),
            "max_abs_reloaded_vs_saved": (reloaded - adapted).abs().max().item(),
            "max_abs_merged_vs_adapter": (merged - adapted).abs().max().item(),
            "keys": sorted(__import__("safetensors.torch", fromlist=["load_file"])
                           .load_file(os.path.join(d, "adapter_model.safetensors")).keys())[:6],
            "config": kw}


def main():
    os.makedirs(OUT, exist_ok=True)
    summary = {}
    for i, (name, kw) in enumerate(CASES.items()):
        try:
            summary[name] = one_case(i, name, kw)
        except Exception as e:  # keep going: one unsupported case must not hide the others
            import traceback
            traceback.print_exc()
            summary[name] = {"error": repr(e)}
    prov = {
        "script": "test-data/lora/make_peft_goldens.py", "command": " ".join(sys.argv),
        "base_model": BASE,
        "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "peft": peft.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "seeds": "torch.manual_seed(2000+i) before get_peft_model, Generator(3000+i) for B, "
                 "modules_to_save perturbation and ids",
        "cases": summary,
    }
    with open(os.path.join(OUT, "provenance.json"), "w") as f:
        json.dump(prov, f, indent=2)
    print(json.dumps(prov, indent=2))


if __name__ == "__main__":
    main()
