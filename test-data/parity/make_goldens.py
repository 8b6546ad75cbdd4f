#!/usr/bin/env python3
"""Writes the transformers reference models and outputs that Hanlin's parity tests check.

For each small config below: a random-init LlamaForCausalLM (fixed seed, fp32) saved with
save_pretrained (safetensors), the logits and loss for fixed token ids, and greedy generations.
Run on a machine with torch + transformers:  python3 make_goldens.py OUTDIR
The committed copy under test-data/parity/ was made with the command and versions recorded in
OUTDIR/provenance.json.
"""
import json, os, platform, sys, datetime
import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM
from safetensors.torch import save_file

OUT = sys.argv[1] if len(sys.argv) > 1 else "parity-out"
BASE = dict(vocab_size=384, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
            rms_norm_eps=1e-5, rope_theta=10000.0, initializer_range=0.1,
            bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
CASES = {
    # plain multi-head attention
    "mha": {},
    # grouped-query attention: 8 query heads share 2 KV heads
    "gqa": dict(num_attention_heads=8, num_key_value_heads=2),
    # tied input/output embeddings, GQA 4/2
    "tied": dict(num_key_value_heads=2, tie_word_embeddings=True),
    # Llama 3 RoPE scaling (frequency-dependent), head_dim 16, explicit head_dim
    "llama3": dict(num_attention_heads=4, num_key_value_heads=2, rope_theta=500000.0,
                   max_position_embeddings=256, head_dim=16,
                   rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                     high_freq_factor=4.0, original_max_position_embeddings=16)),
    # linear position interpolation
    "linear": dict(rope_scaling=dict(rope_type="linear", factor=2.0)),
    # dynamic NTK scaling, exercised by a sequence longer than max_position_embeddings
    "dynamic": dict(max_position_embeddings=16, rope_scaling=dict(rope_type="dynamic", factor=2.0)),
    # head_dim different from hidden/heads, with attention and MLP biases
    "headdim_bias": dict(head_dim=32, attention_bias=True, mlp_bias=True, num_key_value_heads=2),
}
SEQ = {"dynamic": 40}

def one_case(i, name, over):
    cfg = LlamaConfig(**{**BASE, **over})
    torch.manual_seed(1000 + i)
    model = LlamaForCausalLM(cfg).eval()
    if name == "headdim_bias":  # biases are zero-initialized; make them matter
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n.endswith(".bias"):
                    p.normal_(0, 0.1)
    d = os.path.join(OUT, name)
    model.save_pretrained(d, safe_serialization=True)
    g = torch.Generator().manual_seed(7 + i)
    T = SEQ.get(name, 24)
    ids = torch.randint(3, cfg.vocab_size, (2, T), generator=g)
    with torch.no_grad():
        out = model(ids, labels=ids)
    prompt = ids[:1, :6]
    gen = model.generate(prompt, max_new_tokens=20, do_sample=False, pad_token_id=0, eos_token_id=2)
    gen_nocache = model.generate(prompt, max_new_tokens=20, do_sample=False, use_cache=False,
                                 pad_token_id=0, eos_token_id=2)
    same = torch.equal(gen, gen_nocache)
    save_file({"input_ids": ids.contiguous(), "logits": out.logits.float().contiguous(),
               "loss": out.loss.reshape(1).float()},
              os.path.join(d, "goldens.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(d, "generate.json"), "w") as f:
        json.dump({"prompt_ids": prompt[0].tolist(), "output_ids": gen[0].tolist(),
                   "max_new_tokens": 20, "eos_token_id": 2, "cache_equals_nocache": same}, f)
    if name == "mha":  # a PyTorch pickle checkpoint too, for the .bin loader
        torch.save(model.state_dict(), os.path.join(OUT, "mha_pytorch_model.bin"))
    return {"loss": out.loss.item(), "seq": T, "cache_equals_nocache": same}


def main():
    os.makedirs(OUT, exist_ok=True)
    summary = {}
    for i, (name, over) in enumerate(CASES.items()):
        try:
            summary[name] = one_case(i, name, over)
        except Exception as e:  # keep going: one unsupported case must not hide the others
            import traceback
            traceback.print_exc()
            summary[name] = {"error": repr(e)}
    prov = {
        "script": "test-data/parity/make_goldens.py", "command": " ".join(sys.argv),
        "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "seeds": "torch.manual_seed(1000+i) for the weights, Generator(7+i) for the ids",
        "cases": summary,
    }
    with open(os.path.join(OUT, "provenance.json"), "w") as f:
        json.dump(prov, f, indent=2)
    print(json.dumps(prov, indent=2))


if __name__ == "__main__":
    main()
