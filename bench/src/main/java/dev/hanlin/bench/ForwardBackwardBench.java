package dev.hanlin.bench;

import dev.hanlin.model.LlamaConfig;
import dev.hanlin.model.LlamaModel;
import dev.hanlin.torch.Cuda;
import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Generator;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import java.util.Locale;

/**
 * Forward + backward throughput of a random-init Llama in bf16: the first GPU figure (issue 2).
 * Weights are bf16 (no optimizer); the loss is HF's (logits upcast to fp32, mean cross-entropy).
 * bench/fwd_bwd_hf.py measures transformers' LlamaForCausalLM the same way on the same card.
 *
 * <p>Usage: {@code ForwardBackwardBench [preset=tinyllama] [batch=4] [seq=2048] [steps=10]
 * [warmup=3]}
 */
public final class ForwardBackwardBench {
  public static void main(String[] args) {
    String preset = arg(args, 0, "tinyllama");
    int batch = Integer.parseInt(arg(args, 1, "4"));
    int seq = Integer.parseInt(arg(args, 2, "2048"));
    int steps = Integer.parseInt(arg(args, 3, "10"));
    int warmup = Integer.parseInt(arg(args, 4, "3"));
    LlamaConfig c =
        preset.equals("llama2-7b") ? LlamaConfig.llama2_7b() : LlamaConfig.tinyLlama1b();
    Device dev = Device.cuda(0);
    long t0 = System.nanoTime();
    LlamaModel model = LlamaModel.init(c, 0, DType.BF16, dev);
    for (Tensor w : model.weights().values()) w.requiresGrad(true);
    System.out.printf(
        Locale.ROOT,
        "init %.1f s, %,d parameters%n",
        (System.nanoTime() - t0) / 1e9,
        c.parameterCount());
    Tensor ids =
        Torch.randn(Generator.cpu(1), DType.F32, Device.CPU, batch, seq + 1)
            .abs()
            .mul(1000)
            .to(DType.I64)
            .to(dev)
            .retain(); // (B, T+1) token ids in [0, ~4000)
    double start = 0;
    double loss = 0;
    for (int step = 0; step < warmup + steps; step++) {
      if (step == warmup) {
        Torch.synchronize();
        Cuda.resetPeak(0);
        start = System.nanoTime();
      }
      try (Scope s = Scope.open()) {
        Tensor input = ids.narrow(1, 0, seq), target = ids.narrow(1, 1, seq);
        Tensor logits = model.forward(input, null); // (B, T, V)
        Tensor l =
            Torch.crossEntropy(logits.reshape(-1, c.vocabSize()).toFloat(), target.reshape(-1));
        l.backward();
        for (Tensor w : model.weights().values()) w.clearGrad();
        if (step == warmup + steps - 1) loss = l.item();
      }
    }
    Torch.synchronize();
    double sec = (System.nanoTime() - start) / 1e9;
    double tokensPerSec = (double) batch * seq * steps / sec;
    // 6N per token for forward+backward matmuls plus attention: 12 * layers * seq * hidden (causal
    // halves
    // the 2*2*T*d per token forward, times 3 for forward+backward).
    double flopsPerToken =
        6.0 * c.parameterCount()
            + 6.0 * c.numHiddenLayers() * seq * c.numAttentionHeads() * c.headDim();
    System.out.printf(
        Locale.ROOT,
        "RESULT hanlin preset=%s batch=%d seq=%d steps=%d tokens_per_s=%.0f ms_per_step=%.1f"
            + " tflops=%.1f peak_alloc_gib=%.2f peak_reserved_gib=%.2f loss=%.4f%n",
        preset,
        batch,
        seq,
        steps,
        tokensPerSec,
        sec * 1000 / steps,
        tokensPerSec * flopsPerToken / 1e12,
        Cuda.peakAllocatedBytes(0) / (double) (1L << 30),
        Cuda.peakReservedBytes(0) / (double) (1L << 30),
        loss);
  }

  static String arg(String[] a, int i, String dflt) {
    return a.length > i ? a[i] : dflt;
  }
}
