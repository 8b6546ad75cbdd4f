package dev.hanlin.torch.fused;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import org.bytedeco.pytorch.Dispatcher;
import org.bytedeco.pytorch.GenericList;
import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.IValueVector;
import org.bytedeco.pytorch.OperatorHandle;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Type;

/**
 * Attention forward and backward as two calls of libtorch's own SDPA kernels, the forward keeping
 * the row log-sum-exp that the backward consumes (what autograd saves for {@code
 * scaled_dot_product_attention}). JavaCPP maps none of the underscore ops, so they are called
 * through the dispatcher. The kernel: on the CPU {@code
 * _scaled_dot_product_flash_attention_for_cpu} (causal or an additive mask); on CUDA {@code
 * _scaled_dot_product_flash_attention} for causal bf16/fp16 rows (FlashAttention-2, the fastest
 * there) and {@code _scaled_dot_product_efficient_attention} otherwise, which takes the additive
 * bias of packed rows and float32. With {@code -Dhanlin.sdpa=cudnn}, causal bf16/fp16 rows run
 * {@code _scaled_dot_product_cudnn_attention} instead (cuDNN 9's fused attention; which of the two
 * is faster depends on the card and head size, so it is measured before it becomes a default).
 * Grouped-query keys and values are expanded to the query heads here and their gradients summed
 * back. Legend: B = batch, H = query heads, KV = key/value heads, T = tokens, D = head dim.
 */
public final class Sdpa {
  private Sdpa() {}

  /** Which kernel a forward ran, so that its backward runs the matching one. */
  enum Kernel {
    CPU_FLASH,
    CUDA_FLASH,
    CUDA_CUDNN,
    CUDA_EFFICIENT
  }

  /** {@code -Dhanlin.sdpa=cudnn}: cuDNN's kernel where FlashAttention-2 would run. */
  private static final boolean CUDNN = "cudnn".equals(System.getProperty("hanlin.sdpa", "flash"));

  /**
   * What the backward needs besides q, k, v and the bias: the output (B, H, T, D), the row
   * log-sum-exp, the kernel's own bookkeeping (random state, sequence lengths) kept as values, and
   * whether the key/value heads were expanded.
   */
  public record Saved(
      Tensor out, Tensor lse, Tensor[] extra, long[] ints, Kernel kernel, boolean expandKv) {}

  private static final OperatorHandle CPU_FWD = op("_scaled_dot_product_flash_attention_for_cpu");
  private static final OperatorHandle CPU_BWD =
      op("_scaled_dot_product_flash_attention_for_cpu_backward");
  private static final OperatorHandle FLASH_FWD = op("_scaled_dot_product_flash_attention");
  private static final OperatorHandle FLASH_BWD =
      op("_scaled_dot_product_flash_attention_backward");
  private static final OperatorHandle CUDNN_FWD = op("_scaled_dot_product_cudnn_attention");
  private static final OperatorHandle CUDNN_BWD =
      op("_scaled_dot_product_cudnn_attention_backward");
  private static final OperatorHandle EFF_FWD = op("_scaled_dot_product_efficient_attention");
  private static final OperatorHandle EFF_BWD =
      op("_scaled_dot_product_efficient_attention_backward");
  private static final Type.TypePtr BOOL_T =
      new Type.TypePtr(org.bytedeco.pytorch.BoolType.get()).retainReference();

  private static OperatorHandle op(String name) {
    return Dispatcher.singleton().findSchemaOrThrow("aten::" + name, "").retainReference();
  }

  /**
   * The additive bias (B, 1, T, T) in {@code dtype} of a bool mask (true where a query may attend a
   * key): 0 there, −∞ elsewhere. Its rows are laid out with a stride padded to 16 elements, as the
   * CUDA memory-efficient kernel requires (libtorch's SDPA pads the same way).
   */
  public static Tensor bias(Tensor mask, DType dtype) {
    long b = mask.size(0), t = mask.size(2), s = mask.size(3);
    long padded = (s + 15) / 16 * 16;
    Tensor buf = Torch.full(Double.NEGATIVE_INFINITY, dtype, mask.device(), b, 1, t, padded);
    Tensor view = buf.narrow(3, 0, s);
    view.raw().masked_fill_(mask.raw(), new Scalar(0.0));
    return view;
  }

  /** Attention of q (B, H, T, D) over k, v (B, KV, T, D): causal when {@code bias} is null. */
  public static Saved forward(Tensor q, Tensor k, Tensor v, Tensor bias) {
    long d = q.size(3);
    // FlashAttention-2 takes head dims that are multiples of 8 up to 256 (SDPA pads the others)
    boolean flash = bias == null && q.dtype() != DType.F32 && d % 8 == 0 && d <= 256;
    Kernel kernel =
        !q.device().isCuda()
            ? Kernel.CPU_FLASH
            : flash && CUDNN && d <= 128
                ? Kernel.CUDA_CUDNN
                : flash ? Kernel.CUDA_FLASH : Kernel.CUDA_EFFICIENT;
    // cuDNN's kernel is given as many key/value heads as query heads, as libtorch's SDPA does
    return forward(
        q, k, v, bias, kernel, kernel != Kernel.CUDA_FLASH && kernel != Kernel.CPU_FLASH);
  }

  /** With {@code expandKv}: key/value heads repeated to the query heads before the kernel. */
  static Saved forward(Tensor q, Tensor k, Tensor v, Tensor bias, Kernel kernel, boolean expandKv) {
    long h = q.size(1);
    if (expandKv) {
      k = expand(k, h);
      v = expand(v, h);
    }
    boolean causal = bias == null;
    return switch (kernel) {
      case CPU_FLASH -> {
        IValueVector st = call(CPU_FWD, q, k, v, 0.0, causal, opt(bias), none());
        yield new Saved(tensor(st, 0), tensor(st, 1), new Tensor[0], new long[0], kernel, expandKv);
      }
      case CUDA_FLASH -> {
        IValueVector st = call(FLASH_FWD, q, k, v, 0.0, true, false, none());
        yield new Saved(
            tensor(st, 0),
            tensor(st, 1),
            new Tensor[] {tensor(st, 2), tensor(st, 3), tensor(st, 6), tensor(st, 7)},
            new long[] {st.get(4).toInt(), st.get(5).toInt()},
            kernel,
            expandKv);
      }
      case CUDA_CUDNN -> {
        // (out, logsumexp, cum_seq_q, cum_seq_k, max_q, max_k, philox_seed, philox_offset, debug)
        IValueVector st = call(CUDNN_FWD, q, k, v, none(), true, 0.0, true, false, none());
        yield new Saved(
            tensor(st, 0),
            tensor(st, 1),
            new Tensor[] {tensor(st, 2), tensor(st, 3), tensor(st, 6), tensor(st, 7)},
            new long[] {st.get(4).toInt(), st.get(5).toInt()},
            kernel,
            expandKv);
      }
      case CUDA_EFFICIENT -> {
        Tensor full = bias == null ? null : bias.expand(q.size(0), h, q.size(2), k.size(2));
        IValueVector st = call(EFF_FWD, q, k, v, opt(full), true, 0.0, causal, none());
        yield new Saved(
            tensor(st, 0),
            tensor(st, 1),
            new Tensor[] {tensor(st, 2), tensor(st, 3)},
            new long[0],
            kernel,
            expandKv);
      }
    };
  }

  /** The gradients of q, k and v (k and v at their own KV heads) from the output's {@code dout}. */
  public static Tensor[] backward(Tensor dout, Tensor q, Tensor k, Tensor v, Tensor bias, Saved s) {
    long h = q.size(1), kv = k.size(1);
    Tensor ke = s.expandKv() ? expand(k, h) : k, ve = s.expandKv() ? expand(v, h) : v;
    boolean causal = bias == null;
    IValueVector st =
        switch (s.kernel()) {
          case CPU_FLASH ->
              call(CPU_BWD, dout, q, ke, ve, s.out(), s.lse(), 0.0, causal, opt(bias), none());
          case CUDA_FLASH -> {
            Tensor[] e = s.extra();
            yield call(
                FLASH_BWD,
                dout,
                q,
                ke,
                ve,
                s.out(),
                s.lse(),
                e[0],
                e[1],
                s.ints()[0],
                s.ints()[1],
                0.0,
                true,
                e[2],
                e[3],
                none());
          }
          case CUDA_CUDNN -> {
            Tensor[] e = s.extra();
            // cuDNN reads the output's gradient in the output's own layout
            Tensor g = inLayoutOf(s.out(), dout);
            yield call(
                CUDNN_BWD,
                g,
                q,
                ke,
                ve,
                s.out(),
                s.lse(),
                e[2],
                e[3],
                undefined(),
                e[0],
                e[1],
                s.ints()[0],
                s.ints()[1],
                0.0,
                true,
                none());
          }
          case CUDA_EFFICIENT -> {
            Tensor full =
                bias == null ? undefined() : bias.expand(q.size(0), h, q.size(2), ke.size(2));
            GenericList mask = new GenericList(BOOL_T);
            for (boolean m : new boolean[] {true, true, true, false}) mask.push_back(new IValue(m));
            yield call(
                EFF_BWD,
                dout.contiguous(),
                q,
                ke,
                ve,
                full,
                s.out(),
                s.lse(),
                s.extra()[0],
                s.extra()[1],
                0.0,
                new IValue(mask),
                causal,
                none());
          }
        };
    return new Tensor[] {tensor(st, 0), reduce(tensor(st, 1), kv), reduce(tensor(st, 2), kv)};
  }

  /** {@code x} with the strides of {@code like} (copied there when they differ). */
  private static Tensor inLayoutOf(Tensor like, Tensor x) {
    boolean same = true;
    for (int i = 0; i < like.shape().length; i++) same &= like.raw().stride(i) == x.raw().stride(i);
    if (same) return x;
    return Tensor.wrap(org.bytedeco.pytorch.global.torch.empty_like(like.raw())).copy_(x);
  }

  /** Key/value heads (B, KV, T, D) repeated to (B, H, T, D), each KV head serving H/KV queries. */
  private static Tensor expand(Tensor x, long h) {
    long b = x.size(0), kv = x.size(1), t = x.size(2), d = x.size(3);
    if (kv == h) return x;
    return x.unsqueeze(2).expand(b, kv, h / kv, t, d).reshape(b, h, t, d);
  }

  /** The gradient (B, H, T, D) of expanded heads summed back to (B, KV, T, D). */
  private static Tensor reduce(Tensor g, long kv) {
    long b = g.size(0), h = g.size(1), t = g.size(2), d = g.size(3);
    if (kv == h) return g;
    return Tensor.wrap(
        g.reshape(b, kv, h / kv, t, d).raw().sum(new long[] {2}, false, new ScalarTypeOptional()));
  }

  private static IValueVector call(OperatorHandle op, Object... args) {
    IValueVector st = new IValueVector();
    for (Object a : args) st.push_back(ivalue(a));
    op.callBoxed(st);
    return st;
  }

  private static IValue ivalue(Object a) {
    return switch (a) {
      case IValue i -> i;
      case Tensor t -> new IValue(t.raw());
      case Double d -> new IValue(d);
      case Boolean b -> new IValue(b);
      case Long l -> new IValue(l);
      default -> throw new IllegalArgumentException("no IValue for " + a);
    };
  }

  private static IValue opt(Tensor t) {
    return t == null ? none() : new IValue(t.raw());
  }

  private static IValue none() {
    return new IValue();
  }

  private static Tensor undefined() {
    return Tensor.wrap(new org.bytedeco.pytorch.Tensor());
  }

  private static Tensor tensor(IValueVector st, int i) {
    return Tensor.wrap(new org.bytedeco.pytorch.Tensor(st.get(i).toTensor()));
  }
}
