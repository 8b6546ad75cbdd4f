#!/usr/bin/env python3
"""Golden NF4 tensors for Hanlin's dev.hanlin.model.quant (issue 17), from two sources:

  bnb    bitsandbytes itself: functional.quantize_4bit(w, blocksize=64, compress_statistics=True,
         quant_type="nf4") and dequantize_4bit, on CUDA when there is one (without CUDA bitsandbytes
         runs its torch "default" backend, whose edge cases differ from the CUDA kernels: zero
         blocks, values on a midpoint; the file's metadata names the device)
         -> test-data/quant/bnb_nf4.safetensors (written only where `import bitsandbytes` works)
  numpy  a pure-numpy port of the same algorithm as bitsandbytes' CUDA kernels run it
         (csrc/kernels.cu kQuantizeBlockwise + dQuantizeNF4, dQuantize<0>, kDequantizeBlockwise;
         bitsandbytes/functional.py quantize_4bit, quantize_blockwise, create_dynamic_map,
         dequantize_4bit; bitsandbytes-foundation/bitsandbytes 95f9af3), runnable with numpy only
         -> test-data/quant/numpy_nf4.safetensors

Usage:  python3 make_bnb_goldens.py [--source bnb|numpy|both] [--out DIR]
        (default: both where bitsandbytes imports, numpy otherwise)

Both files hold, for each case: weight (F32, its shape), codes (U8, ceil(n/2): two codes per byte,
element 2i in the high nibble), absmax (F32, first level, one per 64 block), absmax_codes (U8, the
double-quantized absmaxes), absmax2 (F32, one per 256 blocks), offset (F32 [1]), code (F32 [256],
the dynamic map used), dequantized (F32); the bnb file also dequantized_bf16 (bitsandbytes' bf16
output of the bf16-cast weight, widened to F32) and offset_bf16 (its offset). Metadata: source, versions, device, cases.

The one deliberate difference of the numpy port (and of Hanlin) from bitsandbytes: the offset is the
mean of the absmaxes in float64 rounded to float32; bitsandbytes takes torch's float32 mean(), whose
last bit depends on the device's reduction order (the Java test allows a few ulps there and checks
the second level with bitsandbytes' own offset).
"""
import argparse
import json
import os
import struct
import sys
from fractions import Fraction

import numpy as np

F32 = np.float32
HERE = os.path.dirname(os.path.abspath(__file__))

# ---- the cases: fixed seeds, numpy's generator (independent of torch) ----


def cases():
    rng = np.random.default_rng(20231201)
    out = {}
    out["plain"] = (rng.standard_normal((64, 96)) * 0.02).astype(F32)
    out["odd"] = (rng.standard_normal((37, 101)) * 0.02).astype(F32)  # 3737: not a multiple of 64
    out["multi"] = (rng.standard_normal((130, 257)) * 0.05).astype(F32)  # 523 blocks, 3 groups
    w = (rng.standard_normal(7 * 64 + 17) * 0.02).astype(F32)
    w[64:128] = 0  # an all-zero block
    w[130] = 1e4  # one huge value
    w[192:256:2] = -0.0  # negative zeros
    w[256] = 1.0  # absmax 1: the values below are compared as they are
    thresholds = np.array([f32_literal(t) for t in NF4_THRESHOLDS], dtype=F32)
    w[257:287:2] = thresholds
    w[258:288:2] = np.nextafter(thresholds, F32(np.inf))
    w[320:384] = -0.0  # a block of negative zeros only
    out["special"] = w
    return out


# ---- the pure-numpy port ----

NF4 = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]
NF4_THRESHOLDS = [
    -0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544,
    -0.23460740596055984, -0.13791173323988914, -0.045525018125772476, 0.03979014977812767,
    0.1202552504837513, 0.2035212516784668, 0.2920137718319893, 0.3893125355243683,
    0.5016634166240692, 0.6427869200706482, 0.8614784181118011,
]


def f32_literal(v):
    """A C float literal such as `0.8614784181118011f`: the decimal rounded once, straight to
    float32. np.float32(v) rounds the already-rounded double again, which moves four of
    dQuantizeNF4's fifteen thresholds by one ulp."""
    exact = Fraction(repr(v))
    c = F32(v)
    candidates = [c, np.nextafter(c, F32(np.inf)), np.nextafter(c, F32(-np.inf))]
    return min(candidates, key=lambda x: (abs(Fraction(float(x)) - exact), int(np.array(x).view(np.uint32)) & 1))


def fma32(a, b, c):
    """float32 a*b + c rounded once (the product of two float32 is exact in float64)."""
    return F32(np.float64(F32(a)) * np.float64(F32(b)) + np.float64(F32(c)))


def torch_linspace32(start, end, steps):
    """torch's CPU float32 linspace: start + step*i below halfway, end - step*(steps-1-i) above,
    each multiply-add fused as torch's AVX2/AVX-512 kernels are compiled."""
    start, end = F32(start), F32(end)
    step = F32((end - start) / F32(steps - 1))
    half = steps // 2
    return np.array(
        [fma32(step, i, start) if i < half else fma32(-step, steps - i - 1, end) for i in range(steps)],
        dtype=F32,
    )


def create_dynamic_map():
    """functional.py create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)."""
    data = []
    for i in range(7):
        b = torch_linspace32(0.1, 1, 2**i + 1)
        means = ((b[:-1] + b[1:]) / F32(2.0)).astype(F32)
        scale = F32(10.0 ** (i - 6)) if i < 6 else F32(1)
        data += list((means * scale).astype(F32))
        data += list((means * -scale).astype(F32))
    data += [F32(0), F32(1)]
    assert len(data) == 256
    return np.sort(np.array(data, dtype=F32))


def dquantize_nf4(x):
    """kernels.cu dQuantizeNF4, branch by branch (np.where per node; NaN fails every `>`)."""
    t = [f32_literal(v) for v in NF4_THRESHOLDS]
    gt = lambda k: x > t[k]  # noqa: E731
    w = np.where
    return w(gt(7),
             w(gt(11),
               w(gt(13), w(gt(14), 15, 14), w(gt(12), 13, 12)),
               w(gt(9), w(gt(10), 11, 10), w(gt(8), 9, 8))),
             w(gt(3),
               w(gt(5), w(gt(6), 7, 6), w(gt(4), 5, 4)),
               w(gt(1), w(gt(2), 3, 2), w(gt(0), 1, 0)))).astype(np.int32)


def dquantize8(code, x):
    """kernels.cu dQuantize<0>: the binary search from pivot 127 and its tie rule."""
    n = x.shape[0]
    pivot = np.full(n, 127, np.int64)
    upper_pivot = np.full(n, 255, np.int64)
    lower_pivot = np.zeros(n, np.int64)
    lower = np.full(n, F32(-1), F32)
    upper = np.full(n, F32(1), F32)
    val = code[pivot]
    i = 64
    while i > 0:
        up = x > val
        lower_pivot = np.where(up, pivot, lower_pivot)
        lower = np.where(up, val, lower)
        upper_pivot = np.where(up, upper_pivot, pivot)
        upper = np.where(up, upper, val)
        pivot = pivot + np.where(up, i, -i)
        val = code[pivot]
        i >>= 1
    upper = np.where(upper_pivot == 255, code[255], upper).astype(F32)
    lower = np.where(lower_pivot == 0, code[0], lower).astype(F32)
    above = x > val
    mid_up = ((upper + val) * F32(0.5)).astype(F32)
    mid_lo = ((lower + val) * F32(0.5)).astype(F32)
    return np.where(above, np.where(x > mid_up, upper_pivot, pivot),
                    np.where(x < mid_lo, lower_pivot, pivot)).astype(np.uint8)


def blockwise(flat, size):
    """Zero-padded (blocks, size), absmax per block, and x * (1.0f/absmax) (kQuantizeBlockwise)."""
    nb = -(-flat.size // size)
    padded = np.zeros(nb * size, F32)
    padded[: flat.size] = flat
    blocks = padded.reshape(nb, size)
    absmax = np.abs(blocks).max(axis=1).astype(F32)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (blocks * (F32(1.0) / absmax)[:, None]).astype(F32)
    return absmax, x


def numpy_nf4(w, code):
    flat = w.reshape(-1).astype(F32)
    n = flat.size
    absmax, x = blockwise(flat, 64)
    q = dquantize_nf4(x).reshape(-1)
    packed = ((q[0::2] << 4) | q[1::2]).astype(np.uint8)[: (n + 1) // 2]
    offset = F32(np.float64(absmax).sum() / absmax.size)
    centred = (absmax - offset).astype(F32)
    absmax2, y = blockwise(centred, 256)
    qa = dquantize8(code, y.reshape(-1))[: absmax.size]
    deq_absmax = (code[qa] * np.repeat(absmax2, 256)[: absmax.size]).astype(F32) + offset
    levels = np.array([f32_literal(v) for v in NF4], F32)
    q_all = np.stack([packed >> 4, packed & 15], axis=1).reshape(-1)[:n]
    deq = (levels[q_all] * np.repeat(deq_absmax, 64)[:n]).astype(F32).reshape(w.shape)
    return dict(codes=packed, absmax=absmax, absmax_codes=qa, absmax2=absmax2,
                offset=np.array([offset], F32), code=code, dequantized=deq)


# ---- bitsandbytes itself ----


def bnb_nf4(w):
    import torch
    import bitsandbytes.functional as bf

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    t = torch.from_numpy(w).to(dev)
    _, st1 = bf.quantize_4bit(t, blocksize=64, compress_statistics=False, quant_type="nf4")
    q, st = bf.quantize_4bit(t, blocksize=64, compress_statistics=True, quant_type="nf4")
    deq = bf.dequantize_4bit(q, st)
    tb = t.to(torch.bfloat16)
    qb, stb = bf.quantize_4bit(tb, blocksize=64, compress_statistics=True, quant_type="nf4")
    deqb = bf.dequantize_4bit(qb, stb)
    cpu = lambda x: x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()  # noqa
    return dict(codes=cpu(q).reshape(-1).astype(np.uint8), absmax=cpu(st1.absmax),
                absmax_codes=cpu(st.absmax).astype(np.uint8), absmax2=cpu(st.state2.absmax),
                offset=np.array([float(st.offset)], F32), code=cpu(st.state2.code),
                dequantized=cpu(deq).reshape(w.shape), dequantized_bf16=cpu(deqb).reshape(w.shape),
                offset_bf16=np.array([float(stb.offset)], F32)), dev


# ---- a minimal safetensors writer (no dependency beyond numpy) ----

DTYPES = {np.dtype(F32): "F32", np.dtype(np.uint8): "U8"}


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        data = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", choices=["bnb", "numpy", "both"])
    p.add_argument("--out", default=HERE)
    args = p.parse_args()
    try:
        import bitsandbytes  # noqa: F401
        have_bnb = True
    except Exception as e:  # ImportError, or a broken CUDA setup
        have_bnb = False
        why = f"{type(e).__name__}: {e}"
    source = args.source or ("both" if have_bnb else "numpy")
    if source in ("bnb", "both") and not have_bnb:
        sys.exit(f"bitsandbytes does not import here ({why}); use --source numpy")
    ws = cases()
    names = sorted(ws)
    if source in ("numpy", "both"):
        code = create_dynamic_map()
        tensors = {}
        for name in names:
            tensors[f"{name}.weight"] = ws[name]
            for k, v in numpy_nf4(ws[name], code).items():
                tensors[f"{name}.{k}"] = v
        meta = {"source": "numpy port of bitsandbytes' CUDA NF4 (95f9af3)",
                "numpy": np.__version__, "cases": ",".join(names)}
        path = os.path.join(args.out, "numpy_nf4.safetensors")
        write_safetensors(path, tensors, meta)
        print("wrote", path)
    if source in ("bnb", "both"):
        import bitsandbytes
        import torch

        tensors, dev = {}, None
        for name in names:
            tensors[f"{name}.weight"] = ws[name]
            parts, dev = bnb_nf4(ws[name])
            for k, v in parts.items():
                tensors[f"{name}.{k}"] = v
        meta = {"source": "bitsandbytes.functional.quantize_4bit", "bitsandbytes": bitsandbytes.__version__,
                "torch": torch.__version__, "device": dev,
                "gpu": torch.cuda.get_device_name() if dev == "cuda" else "none", "cases": ",".join(names)}
        path = os.path.join(args.out, "bnb_nf4.safetensors")
        write_safetensors(path, tensors, meta)
        print("wrote", path)


if __name__ == "__main__":
    main()
