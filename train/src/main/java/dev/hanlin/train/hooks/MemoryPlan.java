package dev.hanlin.train.hooks;

import dev.hanlin.model.LlamaConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What one GPU of a full-training run holds, predicted from the model's shape before anything is
 * allocated, so that a user sees whether a run fits before starting it.
 *
 * <p>Model states follow the ZeRO paper (Rajbhandari et al., "ZeRO: Memory Optimizations Toward
 * Training Trillion Parameter Models", SC 2020, section 3.1 and Table 1): with Ψ parameters, bf16
 * weights and gradients (2Ψ + 2Ψ) and K = 12 bytes of optimizer state per parameter (fp32 master 4,
 * AdamW's two moments 4 + 4), one GPU holds (2 + 2 + K)Ψ; ZeRO-1 (optimizer states partitioned over
 * N_d ranks) 4Ψ + KΨ/N_d; ZeRO-2 (and gradients) 2Ψ + (2 + K)Ψ/N_d; ZeRO-3 (and parameters) (2 + 2
 * + K)Ψ/N_d. fp32 training (with or without bf16 autocast) has no separate master: 4Ψ weights, 4Ψ
 * gradients, 8Ψ moments. {@code offload_optimizer: cpu} (ZeRO-Offload) moves the masters and
 * moments, the K part, to host memory (each rank its share with ZeRO-1/2).
 *
 * <p>Beyond the model states, what backward needs at once: with ZeRO-2 one backward stage's full
 * gradients before they are sent to their owners (and with {@code overlap_comm} the buckets in
 * flight, counted as two), with ZeRO-3 the all-gathered bf16 parameters of two blocks (the one
 * computing and the one prefetched) or of the largest unit (embedding, head), and one unit's full
 * gradients before their reduce-scatter.
 *
 * <p>Activations per micro-batch of B rows of T tokens, counted as the tensors autograd saves in
 * this Llama (after the method of Korthikanti et al., "Reducing Activation Recomputation in Large
 * Transformer Models", 2022), a = 2 bytes (bf16) or 4 (fp32): each block saves a·B·T·(7D + 2D_kv +
 * 4F) (norm inputs and outputs, q, attention output and its projection input, k and v; SwiGLU's
 * gate, silu(gate), up and their product) plus the fp32 log-sum-exp of attention, 4·B·H·T; the head
 * saves its norm's input and output, 2·a·B·T·D, and the logits B·T·V·(a + 12): the logits
 * themselves, their fp32 copy and the saved log-softmax (4 + 4), and the logits' fp32 gradient in
 * backward (4). Without gradient checkpointing every block's activations are saved (and the
 * embedding's output, a·B·T·D); with it, each block's input (a·B·T·D per block) plus one block's
 * activations while it is recomputed. Flash attention saves no T×T matrix. The allocator's
 * fragmentation and libtorch's workspaces are not counted: the measured peak runs some GiB above.
 */
public record MemoryPlan(
    Setup setup,
    long params,
    long weights,
    long gradients,
    long masters,
    long optimizer,
    long commBuffers,
    long activations,
    long logits,
    long hostStates) {

  /** The number formats of a run, as they decide bytes per parameter. */
  public enum Kind {
    /** fp32 weights, gradients and moments. */
    FP32,
    /** fp32 weights under bf16 autocast: fp32 states, bf16 activations. */
    AUTOCAST,
    /** bf16 weights and gradients, fp32 masters and moments on the GPU. */
    MASTER_WEIGHTS,
    /** bf16 weights and gradients on the GPU, fp32 masters and moments in host memory. */
    OFFLOAD;

    /** The kind of {@code p}. */
    public static Kind of(dev.hanlin.train.precision.Precision p) {
      return switch (p) {
        case dev.hanlin.train.precision.OffloadedMasters o -> OFFLOAD;
        case dev.hanlin.train.precision.MasterWeights m -> MASTER_WEIGHTS;
        case dev.hanlin.train.precision.Fp32 f -> FP32;
        default -> AUTOCAST;
      };
    }

    int weightBytes() {
      return this == FP32 || this == AUTOCAST ? 4 : 2;
    }

    int activationBytes() {
      return this == FP32 ? 4 : 2;
    }

    /** fp32 master bytes per parameter (0: the weights are the masters). */
    int masterBytes() {
      return this == MASTER_WEIGHTS || this == OFFLOAD ? 4 : 0;
    }
  }

  /** What decides the plan besides the model's shape. */
  public record Setup(
      Kind kind,
      int zeroStage,
      int world,
      int microBatch,
      int seqLen,
      boolean checkpointing,
      long reduceBucket) {
    public Setup {
      if (world < 1 || microBatch < 1 || seqLen < 1)
        throw new IllegalArgumentException("world, micro-batch and seq len must be >= 1");
      if (zeroStage < 0 || zeroStage > 3)
        throw new IllegalArgumentException("zero stage must be 0..3, got " + zeroStage);
    }

    Setup with(Kind k, int stage) {
      return new Setup(k, stage, world, microBatch, seqLen, checkpointing, reduceBucket);
    }
  }

  /** The plan for a model of shape {@code c} under {@code s}. */
  public static MemoryPlan of(LlamaConfig c, Setup s) {
    long n = c.parameterCount();
    int w = s.world();
    int stage = w == 1 ? 0 : s.zeroStage(); // one process shards nothing
    Kind k = s.kind();
    long b = s.microBatch(), t = s.seqLen(), d = c.hiddenSize(), f = c.intermediateSize();
    long kv = (long) c.numKeyValueHeads() * c.headDim(), v = c.vocabSize();
    int a = k.activationBytes(), wb = k.weightBytes();
    long block = blockParams(c), unit = Math.max(block, v * d); // embedding / head as units

    States st = states(n, k, stage, w);
    long weights = st.weights(), grads = st.gradients();
    long comm = 0;
    if (stage == 2) { // a stage's full gradients before they reach their owners
      comm = wb * Math.max(block, v * d);
      if (s.reduceBucket() > 0) comm += 2 * wb * s.reduceBucket();
    } else if (stage == 3) comm = 2L * Math.max(2 * block, unit) + wb * unit; // bf16 gathers
    long perBlock = a * b * t * (7 * d + 2 * kv + 4 * f) + 4 * b * c.numAttentionHeads() * t;
    long head = 2 * a * b * t * d;
    long acts =
        s.checkpointing()
            ? c.numHiddenLayers() * a * b * t * d + perBlock + head
            : c.numHiddenLayers() * perBlock + head + a * b * t * d;
    long logits = b * t * v * (a + 12L);
    return new MemoryPlan(
        s, n, weights, grads, st.masters(), st.optimizer(), comm, acts, logits, st.host());
  }

  /** ZeRO's model states of {@code n} parameters on one GPU, and offloaded to its host. */
  public record States(long weights, long gradients, long masters, long optimizer, long host) {
    public long gpu() {
      return weights + gradients + masters + optimizer;
    }
  }

  /**
   * The model states per GPU of {@code n} parameters in {@code k} at ZeRO {@code stage} over {@code
   * world} ranks: the ZeRO paper's Table 1 (with K = 12 for bf16 + fp32 masters + AdamW).
   */
  public static States states(long n, Kind k, int stage, int world) {
    int wb = k.weightBytes();
    long masters = k.masterBytes() * n, optimizer = 8L * n; // DeepSpeed's K = 12 (or 8)
    if (stage >= 1) {
      masters = ceilDiv(masters, world);
      optimizer = ceilDiv(optimizer, world);
    }
    long host = 0;
    if (k == Kind.OFFLOAD) {
      host = masters + optimizer;
      masters = 0;
      optimizer = 0;
    }
    long weights = stage == 3 ? ceilDiv(wb * n, world) : wb * n;
    long grads = stage >= 2 ? ceilDiv(wb * n, world) : wb * n;
    return new States(weights, grads, masters, optimizer, host);
  }

  /** One transformer block's parameters. */
  static long blockParams(LlamaConfig c) {
    long h = c.hiddenSize(), q = (long) c.numAttentionHeads() * c.headDim();
    long kv = (long) c.numKeyValueHeads() * c.headDim();
    return 2 * h * q + 2 * h * kv + 3 * h * c.intermediateSize() + 2 * h;
  }

  private static long ceilDiv(long x, int y) {
    return (x + y - 1) / y;
  }

  /** Weights, gradients, masters and optimizer state on the GPU (ZeRO's "model states"). */
  public long modelStates() {
    return weights + gradients + masters + optimizer;
  }

  /** Everything on one GPU at the step's peak (as far as this plan counts). */
  public long total() {
    return modelStates() + commBuffers + activations + logits;
  }

  private static String gib(long bytes) {
    return String.format(Locale.ROOT, "%8.2f GiB", bytes / 1073741824.0);
  }

  /**
   * The plan's total beside the measured peak: the CUDA caching allocator's peak of bytes held by
   * tensors on {@code device} since the run started; on the CPU nothing is measured.
   */
  public String measured(dev.hanlin.torch.Device device) {
    String planned = String.format(Locale.ROOT, "%.2f GiB", total() / 1073741824.0);
    if (!device.isCuda())
      return "memory plan: " + planned + " per GPU predicted; peak not measured on CPU";
    long peak = dev.hanlin.torch.Cuda.peakAllocatedBytes(device.index());
    return String.format(
        Locale.ROOT,
        "memory plan: %s per GPU predicted; measured peak %.2f GiB allocated (%+.1f%%)",
        planned,
        peak / 1073741824.0,
        100.0 * (peak - total()) / total());
  }

  /** The plan as a small table, one part a line, ending in the total. */
  public String render() {
    Setup s = setup;
    StringBuilder out = new StringBuilder();
    out.append(
        String.format(
            Locale.ROOT,
            "memory plan per GPU: %.2fB parameters, %s, zero_stage %d of %d rank%s, micro-batch %d"
                + " x %d tokens, gradient checkpointing %s%n",
            params / 1e9,
            s.kind().name().toLowerCase(Locale.ROOT).replace('_', ' '),
            s.world() == 1 ? 0 : s.zeroStage(),
            s.world(),
            s.world() == 1 ? "" : "s",
            s.microBatch(),
            s.seqLen(),
            s.checkpointing() ? "on" : "off"));
    List<String[]> rows = new ArrayList<>();
    rows.add(new String[] {"weights", gib(weights)});
    rows.add(new String[] {"gradients", gib(gradients)});
    rows.add(new String[] {"fp32 master weights", gib(masters)});
    rows.add(new String[] {"AdamW moments", gib(optimizer)});
    rows.add(new String[] {"communication buffers", gib(commBuffers)});
    rows.add(new String[] {"activations (one micro-batch)", gib(activations)});
    rows.add(new String[] {"logits and loss (fp32)", gib(logits)});
    rows.add(new String[] {"total", gib(total())});
    for (String[] r : rows) out.append(String.format(Locale.ROOT, "  %-30s %s%n", r[0], r[1]));
    if (hostStates > 0)
      out.append(
          String.format(
              Locale.ROOT,
              "  %-30s %s (pinned host memory, per rank)%n",
              "offloaded masters + moments",
              gib(hostStates)));
    return out.toString();
  }

  /**
   * The plans of every zero stage (0 to 3) with and without offloading, for a user deciding how to
   * run {@code c}: one line each, total per GPU and host memory per rank.
   */
  public static String compare(LlamaConfig c, Setup s) {
    StringBuilder out = new StringBuilder();
    out.append(
        String.format(
            Locale.ROOT,
            "per GPU with %d rank%s (bf16 weights, fp32 masters and AdamW; micro-batch %d x %d,"
                + " gradient checkpointing %s):%n",
            s.world(),
            s.world() == 1 ? "" : "s",
            s.microBatch(),
            s.seqLen(),
            s.checkpointing() ? "on" : "off"));
    out.append(
        String.format(
            Locale.ROOT,
            "  %-22s %12s %12s %12s %12s%n",
            "",
            "model states",
            "activations",
            "total GPU",
            "host/rank"));
    for (int stage = 0; stage <= 3; stage++)
      for (Kind k : new Kind[] {Kind.MASTER_WEIGHTS, Kind.OFFLOAD}) {
        if (k == Kind.OFFLOAD && stage == 3) continue; // not with ZeRO-3 yet
        MemoryPlan p = of(c, s.with(k, stage));
        out.append(
            String.format(
                Locale.ROOT,
                "  %-22s %12s %12s %12s %12s%n",
                "zero_stage " + stage + (k == Kind.OFFLOAD ? " + offload" : ""),
                gib(p.modelStates()).strip(),
                gib(p.activations + p.logits).strip(),
                gib(p.total()).strip(),
                gib(p.hostStates).strip()));
      }
    return out.toString();
  }
}
