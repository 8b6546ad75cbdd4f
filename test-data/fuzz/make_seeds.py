#!/usr/bin/python3
"""Writes the seed corpora of the Jazzer fuzz targets (<module>/src/test/resources/.../<Target>Inputs/).

Run with Debian's python3 (python3-sentencepiece installed) from the repository root:
    /usr/bin/python3 test-data/fuzz/make_seeds.py
Seeds are small valid files made by references we did not write where there is one (sentencepiece
trains the tokenizer.model seeds, torch wrote the state dict pickle in test-data/parity/mha_bin),
built to the published spec otherwise (safetensors, the token shard layout in ShardFormat.java),
plus a few interesting invalid ones (truncated, lying lengths, flipped bytes). Output is
deterministic, so re-running it changes nothing.
"""
import io, json, os, pickle, shutil, struct, sys, tempfile, zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def inputs(module, package, target, method):
    d = os.path.join(ROOT, module, "src/test/resources", package.replace(".", "/"),
                     target + "Inputs", method)
    os.makedirs(d, exist_ok=True)  # keeps the crash-* regression inputs Jazzer saved there
    return d


def put(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def flip(data, at, mask=0x01):
    b = bytearray(data)
    b[at % len(b)] ^= mask
    return bytes(b)


TEXT = ("子曰：学而时习之，不亦说乎？有朋自远方来，不亦乐乎？人不知而不愠，不亦君子乎？\n"
        "道可道，非常道。名可名，非常名。无名天地之始；有名万物之母。\n"
        "The quick brown fox jumps over the lazy dog. 12345 67890\n"
        "Hello, world! 你好，世界。 tabs\tand  spaces\n")

# ---- tokenizer.model: three small models trained by sentencepiece ----------------------------
def tokenizer_models():
    import sentencepiece as spm
    d = inputs("tokenizer", "dev.hanlin.tokenizer.fuzz", "TokenizerModelFuzzTest", "tokenizerModel")
    tmp = tempfile.mkdtemp()
    corpus = os.path.join(tmp, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write(TEXT * 3)
    models = {}
    for name, extra in [("bpe_byte_fallback", dict(byte_fallback=True, vocab_size=360)),
                        ("bpe_split_digits", dict(vocab_size=140, split_digits=True,
                                                  add_dummy_prefix=False)),
                        ("unigram", dict(model_type="unigram", vocab_size=140))]:
        # relative paths: the trainer_spec stored in the model records them
        kw = dict(input="corpus.txt", model_prefix=name, model_type="bpe", bos_id=1,
                  eos_id=2, unk_id=0, pad_id=-1, minloglevel=2, hard_vocab_limit=False,
                  character_coverage=1.0, normalization_rule_name="identity",
                  num_threads=1, seed_sentencepiece_size=1000)
        kw.update(extra)
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            spm.SentencePieceTrainer.train(**kw)
        finally:
            os.chdir(cwd)
        with open(os.path.join(tmp, name + ".model"), "rb") as f:
            models[name] = f.read()
        put(d, name + ".model", models[name])
    m = models["bpe_split_digits"]
    put(d, "truncated.model", m[: len(m) // 2])
    put(d, "flipped_tag.model", flip(m, 0, 0x07))  # first field's wire type changed
    put(d, "empty_piece.model", bytes([0x0A, 0x02, 0x0A, 0x00]))  # one piece with empty text
    shutil.rmtree(tmp)
    return models


# ---- tokenizer.json in HF's Llama layout, from the same pieces --------------------------------
def tokenizer_json(models):
    import sentencepiece as spm
    d = inputs("tokenizer", "dev.hanlin.tokenizer.fuzz", "TokenizerJsonFuzzTest", "tokenizerJson")
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "m.model")
    with open(path, "wb") as f:
        f.write(models["bpe_split_digits"])
    sp = spm.SentencePieceProcessor(model_file=path)
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    merges = []
    for piece, i in sorted(vocab.items(), key=lambda kv: kv[1]):
        if len(piece) > 1 and not piece.startswith("<"):
            for k in range(1, len(piece)):
                if piece[:k] in vocab and piece[k:] in vocab:
                    merges.append(piece[:k] + " " + piece[k:])
                    break
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t, i in (("<unk>", 0), ("<s>", 1), ("</s>", 2))]
    doc = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
           "normalizer": {"type": "Sequence", "normalizers": [
               {"type": "Prepend", "prepend": "\u2581"},
               {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
           "pre_tokenizer": None, "post_processor": None, "decoder": None,
           "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                     "continuing_subword_prefix": None, "end_of_word_suffix": None,
                     "fuse_unk": True, "byte_fallback": False, "ignore_merges": False,
                     "vocab": vocab, "merges": merges}}
    put(d, "llama_layout.json", json.dumps(doc, ensure_ascii=False, indent=1))
    doc["model"]["merges"] = [m.split(" ", 1) for m in merges]  # tokenizers >= 0.20 pairs
    doc["normalizer"] = None
    doc["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                            "split": False}
    put(d, "pair_merges_metaspace.json", json.dumps(doc, ensure_ascii=False))
    tiny = {"added_tokens": [{"id": 0, "content": "<unk>", "special": True}],
            "model": {"type": "BPE", "byte_fallback": True, "unk_token": "<unk>",
                      "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x41>": 3, "\u2581": 4, "a": 5,
                                "b": 6, "ab": 7}, "merges": ["a b"]}}
    put(d, "tiny_byte_fallback.json", json.dumps(tiny))
    put(d, "wordpiece.json", json.dumps({"model": {"type": "WordPiece", "vocab": {"a": 0}}}))
    put(d, "id_gap.json", json.dumps({"model": {"type": "BPE", "vocab": {"<unk>": 0, "a": 2}}}))
    put(d, "truncated.json", json.dumps(tiny)[:70])
    # ids that would size or index the id table wrongly, a merge pair that is not a pair
    for name, vocab in (("negative_id", {"<unk>": 0, "a": -2}),
                        ("huge_id", {"<unk>": 0, "a": 2000000000}),
                        ("id_overflows_int", {"<unk>": 0, "a": 2 ** 40})):
        put(d, "hostile_" + name + ".json", json.dumps({"model": {"type": "BPE", "vocab": vocab}}))
    put(d, "hostile_empty_merge.json",
        json.dumps({"model": {"type": "BPE", "vocab": {"<unk>": 0, "a": 1}, "merges": [[]]}}))
    shutil.rmtree(tmp)


# ---- safetensors ---------------------------------------------------------------------------
def safetensors_file(tensors, metadata=None, header_pad=0, lie=None):
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode() + b" " * header_pad
    n = len(h) if lie is None else lie
    return struct.pack("<Q", n) + h + data


def safetensors():
    d = inputs("native-bindings", "dev.hanlin.torch.fuzz", "SafetensorsFuzzTest", "safetensors")
    f32 = struct.pack("<6f", 1, -2, 3.5, 0, float("inf"), -0.0)
    valid = safetensors_file({"model.embed_tokens.weight": ("F32", [2, 3], f32),
                              "model.norm.weight": ("BF16", [2], b"\x80\x3f\x00\x40"),
                              "ids": ("I64", [1], struct.pack("<q", 7)),
                              "empty": ("F16", [0, 4], b"")},
                             metadata={"format": "pt"}, header_pad=5)
    put(d, "valid.safetensors", valid)
    put(d, "scalar_u8_bool.safetensors",
        safetensors_file({"s": ("U8", [], b"\x05"), "m": ("BOOL", [3], b"\x01\x00\x01")}))
    put(d, "truncated.safetensors", valid[:-7])
    put(d, "header_past_end.safetensors", safetensors_file({"x": ("F32", [1], f32[:4])}, lie=1 << 20))
    h = b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'
    put(d, "overlap.safetensors", struct.pack("<Q", len(h)) + h + f32[:8])
    h = b'{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}'
    put(d, "overflow_shape.safetensors", struct.pack("<Q", len(h)) + h)


# ---- torch.save pickles -------------------------------------------------------------------
def fake_torch():
    """Stand-ins that pickle by the names torch.save writes, without torch installed."""
    import types
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage: pass
    class LongStorage: pass
    FloatStorage.__module__ = LongStorage.__module__ = "torch"
    FloatStorage.__qualname__, LongStorage.__qualname__ = "FloatStorage", "LongStorage"

    def _rebuild_tensor_v2(*a): pass
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch.FloatStorage, torch.LongStorage, torch._utils = FloatStorage, LongStorage, utils
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    return torch, utils


def pickles():
    import collections
    d = inputs("native-bindings", "dev.hanlin.torch.fuzz", "TorchPickleFuzzTest", "torchPickle")
    with zipfile.ZipFile(os.path.join(ROOT, "test-data/parity/mha_bin/pytorch_model.bin")) as z:
        name = [n for n in z.namelist() if n.endswith("data.pkl")][0]
        put(d, "torch_2_11_mha_state_dict.pkl", z.read(name))  # written by torch.save
    torch, utils = fake_torch()

    class Tensor:
        def __init__(self, key, storage, offset, shape, stride):
            self.args = (key, storage, offset, shape, stride)

        def __reduce__(self):
            key, storage, offset, shape, stride = self.args
            return (utils._rebuild_tensor_v2,
                    (("storage", storage, key, "cpu", 64), offset, shape, stride, False,
                     collections.OrderedDict()))

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return obj if isinstance(obj, tuple) and obj and obj[0] == "storage" else None

    sd = collections.OrderedDict()
    sd["w"] = Tensor("0", torch.FloatStorage, 0, (2, 3), (3, 1))
    sd["w_t"] = Tensor("0", torch.FloatStorage, 1, (3, 2), (1, 3))
    sd["ids"] = Tensor("1", torch.LongStorage, 0, (4,), (1,))
    sd["empty"] = Tensor("1", torch.LongStorage, 0, (0, 5), (5, 1))
    for proto in (2, 4):
        buf = io.BytesIO()
        P(buf, protocol=proto).dump(sd)
        put(d, "small_state_dict_protocol%d.pkl" % proto, buf.getvalue())
    put(d, "os_system.pkl", b"cos\nsystem\n(S'echo hi'\ntR.")
    # hostile tensors that must be refused before libtorch reads outside the storage
    for name, args in (("negative_offset", ("0", torch.FloatStorage, -1, (2, 3), (3, 1))),
                       ("stride_of_other_rank", ("0", torch.FloatStorage, 0, (2, 3), (1,))),
                       ("extent_overflows", ("0", torch.FloatStorage, 0, (2 ** 62, 3), (2 ** 62, 1)))):
        buf = io.BytesIO()
        P(buf, protocol=2).dump(collections.OrderedDict(w=Tensor(*args)))
        put(d, "hostile_" + name + ".pkl", buf.getvalue())
    put(d, "hostile_list_key_holding_itself.pkl", b"\x80\x02}]q\x00h\x00aNs.")  # {L: None}, L = [L]
    del sys.modules["torch"], sys.modules["torch._utils"]


# ---- token shards (layout in data/src/main/java/dev/hanlin/data/shard/ShardFormat.java) ----------
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def shard(docs, vocab, width=2, fingerprint="fuzzseed0123456789abcdef", version=2, chunk=8):
    """A token shard as data/ShardFormat.java lays it out; version 2 adds a CRC32C per `chunk` bytes
    of tokens (8 here, so a seed has several chunks; prepare writes 64 KiB)."""
    tokens = [t for doc in docs for t in doc]
    index, at = [0], 0
    for doc in docs:
        at += len(doc)
        index.append(at)
    data = struct.pack("<%d%s" % (len(tokens), "H" if width == 2 else "I"), *tokens)
    body = data + b"\0" * ((-(256 + len(data))) % 8)
    idx = struct.pack("<%dq" % len(index), *index)
    index_offset = 256 + len(body)
    table = b""
    if version >= 2:
        table = b"".join(struct.pack("<I", crc32c(data[i:i + chunk])) for i in range(0, len(data), chunk))
    size = index_offset + len(idx) + len(table)
    h = bytearray(256)
    struct.pack_into("<8siiqqiIqqqII", h, 0, b"HANLINTK", version, width, len(tokens), len(docs), vocab,
                     crc32c(idx), 256, index_offset, size, crc32c(body + idx + table), 0)
    fp = fingerprint.encode()
    h[72:72 + len(fp)] = fp
    if version >= 2:
        struct.pack_into("<IIq", h, 136, chunk, crc32c(table), index_offset + len(idx))
    struct.pack_into("<I", h, 68, crc32c(bytes(h)))
    return bytes(h) + body + idx + table


def shards():
    d = inputs("data", "dev.hanlin.data.shard", "ShardFuzzTest", "shard")
    put(d, "three_docs_u16.tok", shard([[1, 5, 6, 2], [1, 7, 2], [1, 9, 9, 9, 8, 2]], vocab=32))
    put(d, "one_doc_u32.tok", shard([[1, 70000, 65999, 2]], vocab=70001, width=4))
    put(d, "empty.tok", shard([], vocab=32))
    v = shard([[1, 3, 2], [1, 4, 4, 2]], vocab=32)
    put(d, "truncated.tok", v[:-5])
    put(d, "token_over_vocab.tok", shard([[1, 40, 2]], vocab=32))
    put(d, "three_docs_u16_v1.tok", shard([[1, 5, 6, 2], [1, 7, 2], [1, 9, 9, 9, 8, 2]], vocab=32, version=1))


# ---- YAML configs, JSONL/CSV documents, SFT records -----------------------------------------
def texts():
    d = inputs("train", "dev.hanlin.train.fuzz", "PretrainConfigFuzzTest", "pretrainConfig")
    for name in ("pretrain-demo.yaml", "pretrain-llama2-chinese.yaml", "sft-example.yaml"):
        p = os.path.join(ROOT, "configs", name)
        if os.path.exists(p):
            with open(p, encoding="utf-8") as f:
                put(d, name, f.read())
    put(d, "types.yaml", "max_steps: 80.5\nlearning_rate: [1]\nseed: null\nbogus_key: 1\n")
    put(d, "anchors.yaml", "a: &x {b: *x}\nmax_steps: *x\n")
    put(d, "tab.yaml", "model:\n\thidden_size: 4\n")

    d = inputs("data", "dev.hanlin.data.prepare", "JsonlFuzzTest", "jsonl")
    put(d, "records.jsonl", '{"text":"子曰：学而时习之"}\n{"text":"Hello"}\n\n{"text":"a\\u0000b","id":3}\n')
    put(d, "bad_lines.jsonl", '{"text":"A"}{"text":"B"}\n{"text":1}\n{"txt":"x"}\n[1,2]\n{"text":"x"} xyz\n{"text"\n')
    put(d, "array.json", '[{"text":"一"},{"text":"二"}]')
    put(d, "crlf_bom.jsonl", '\ufeff{"text":"x"}\r\n{"text":"y"}\r\n')
    put(d, "invalid_utf8.jsonl", b'{"text":"\xff\xfe"}\n{"text":"ok"}\n')
    d = inputs("data", "dev.hanlin.data.prepare", "CsvFuzzTest", "csv")
    put(d, "quoted.csv", 'id,text\n1,"子曰，""学而时习之"""\n2,"two\nlines"\n3,plain\n')
    put(d, "ragged.csv", 'text,x\n"open quote\n1,2,3\n,\n')
    put(d, "manifest.csv", 'file_name,lang\na.txt,zh\n')

    # the first byte picks the layout (byte % 4: text, prompt_response, chat, alpaca) and the
    # container (byte // 4 % 3: .jsonl, .json, .csv), as SftFuzzTest reads it
    d = inputs("data", "dev.hanlin.data.sft", "SftFuzzTest", "sftRecords")
    put(d, "prompt_response.jsonl", b"\x01" + '{"input":"你好","target":"你好！"}\n{"input":"","target":"x"}\n'.encode())
    put(d, "alpaca.json", b"\x07" + '[{"instruction":"翻译","input":"cat","output":"猫"},{"instruction":"说","output":"好"}]'.encode())
    put(d, "chat.jsonl", b"\x02" + '{"text":"<s>Human: 你好\\n</s><s>Assistant: 你好！\\n</s>"}\n'.encode())
    put(d, "text.csv", b"\x08" + 'id,text\n1,"子曰，""学而时习之"""\n2,plain\n'.encode())
    put(d, "bad_fields.jsonl", b"\x01" + '{"input":null,"target":1}\n{"input":"x"}\n{"x":\n'.encode())

    d = inputs("data", "dev.hanlin.data.prepare", "PrepareConfigFuzzTest", "prepareConfig")
    with open(os.path.join(ROOT, "configs/prepare-example.yaml"), encoding="utf-8") as f:
        put(d, "prepare-example.yaml", f.read())
    put(d, "types.yaml", "workers: -1\nshard_tokens: 1.5\ntrain_files: x\nbogus: 1\n")

if __name__ == "__main__":
    tokenizer_json(tokenizer_models())
    safetensors()
    pickles()
    shards()
    texts()
    print("seeds written")
