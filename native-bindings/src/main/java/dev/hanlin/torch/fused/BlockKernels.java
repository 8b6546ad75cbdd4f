package dev.hanlin.torch.fused;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The CUDA source of {@link NvrtcOps}' kernels ({@code block_ops.cu} beside this class), the names
 * it exports, the NVRTC options it is compiled with, and the launch shapes, kept apart from the
 * launching code so that CI can compile every kernel and test the shapes without a GPU.
 */
public final class BlockKernels {
  private BlockKernels() {}

  public static final String FILE = "block_ops.cu";

  /** NVRTC options besides the architecture: C++17, and exact expf/logf/division. */
  public static final List<String> OPTIONS = List.of("-std=c++17");

  /** Element types the kernels are instantiated for, as their name suffix. */
  public static final List<String> TYPES = List.of("f32", "bf16");

  /** Columns per thread of the RMSNorm kernels, held in registers. */
  public static final int WIDTH = 8;

  /**
   * The widest row RMSNorm takes: 1024 threads of {@link #WIDTH} columns. More columns per thread
   * would not help, since the register file bounds the columns of one block either way (Llama 2
   * 70B's 8192 fit).
   */
  public static final int MAX_NORM_COLUMNS = 1024 * WIDTH;

  public static String source() {
    try (InputStream in = BlockKernels.class.getResourceAsStream(FILE)) {
      if (in == null) throw new IllegalStateException(FILE + " is missing from the class path");
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + FILE, e);
    }
  }

  /** Every kernel the source exports (the names {@link NvrtcOps} looks up). */
  public static List<String> names() {
    List<String> n = new ArrayList<>();
    n.add("rmsnorm_dw");
    for (String t : TYPES) {
      n.add("rmsnorm_fwd_" + t);
      n.add("add_rmsnorm_fwd_" + t);
      n.add("rmsnorm_bwd_" + t);
      for (String k : List.of("rope_fwd_", "rope_bwd_", "rope_qk_fwd_", "rope_qkv_bwd_"))
        n.add(k + t);
      for (String k : List.of("swiglu_fwd_", "swiglu_bwd_")) n.add(k + t);
      n.add("cross_entropy_" + t);
    }
    return n;
  }

  /**
   * Threads per block of an RMSNorm over rows of {@code c} columns (one block per row, {@link
   * #WIDTH} columns per thread, whole warps): 256 for C = 2048, 1024 for C = 8192.
   */
  public static int normThreads(long c) {
    if (c < 1 || c > MAX_NORM_COLUMNS) {
      throw new IllegalArgumentException(
          "RMSNorm rows of " + c + " columns: the kernels take 1.." + MAX_NORM_COLUMNS);
    }
    long threads = (c + WIDTH - 1) / WIDTH;
    return (int) Math.max(32, (threads + 31) / 32 * 32);
  }

  /**
   * Blocks of the RMSNorm backward: each sums the weight gradient over {@code rowsPerBlock} rows
   * into its own float32 partial row (so no atomics, and the same sum every run), then one small
   * kernel adds the {@code blocks} partials. 512 blocks are one wave on an H100/H200: the kernel
   * takes 59-63 registers a thread (ptxas, sm_90), so 4 blocks of 256 threads fit an SM (528 on 132
   * SMs); more blocks would add a second wave and partials, not resident threads. The partials stay
   * small (512 x C floats: 4 MB at C = 2048).
   */
  public record NormBackwardLaunch(int blocks, int rowsPerBlock) {
    public static final int MAX_BLOCKS = 512;

    public static NormBackwardLaunch of(long rows) {
      if (rows < 0) throw new IllegalArgumentException("RMSNorm backward over " + rows + " rows");
      if (rows == 0) return new NormBackwardLaunch(0, 1); // no partials: the weight gradient is 0
      long per = (rows + MAX_BLOCKS - 1) / MAX_BLOCKS;
      if (per > Integer.MAX_VALUE) throw new IllegalArgumentException(rows + " rows");
      int blocks = (int) ((rows + per - 1) / per);
      return new NormBackwardLaunch(blocks, (int) per);
    }
  }

  /** Threads per block of the elementwise kernels (RoPE, SwiGLU). */
  public static final int ELEMENTWISE_THREADS = 256;

  /** Blocks for {@code n} elements, one element per thread, capped for grid-stride loops. */
  public static int elementwiseBlocks(long n, long cap) {
    long b = (n + ELEMENTWISE_THREADS - 1) / ELEMENTWISE_THREADS;
    return (int) Math.max(1, Math.min(b, cap));
  }

  /**
   * Threads per cross-entropy row: 1024 for vocabularies of 32k and more (each thread streams about
   * 32..64 logits), fewer for small ones so that tiny test models do not idle warps.
   */
  public static int crossEntropyThreads(long v) {
    long t = Math.min(1024, Math.max(32, (v + 31) / 32));
    return (int) ((t + 31) / 32 * 32);
  }
}
