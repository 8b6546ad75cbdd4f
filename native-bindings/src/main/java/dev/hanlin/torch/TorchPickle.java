package dev.hanlin.torch;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * PyTorch {@code torch.save} state dicts ({@code pytorch_model.bin}): a zip with {@code data.pkl}
 * and one {@code data/<key>} entry per storage. The pickle is read by a small interpreter that
 * knows only the opcodes a state dict uses and builds only what the allow-list names (OrderedDict,
 * {@code torch._utils._rebuild_tensor_v2}, typed storages). Nothing is ever imported or called, so
 * a hostile file cannot run code; anything else is an error naming the file. (libtorch's own
 * unpickler rejects transformers' OrderedDict-with-metadata files, hence this reader.)
 */
public final class TorchPickle {
  private TorchPickle() {}

  private record Global(String module, String name) {}

  private record StorageRef(String key, DType dtype) {}

  private record TensorRef(StorageRef storage, long offset, long[] shape, long[] stride) {}

  private static final Object MARK = new Object();

  private static final Map<String, DType> STORAGES =
      Map.of(
          "FloatStorage", DType.F32,
          "HalfStorage", DType.F16,
          "BFloat16Storage", DType.BF16,
          "DoubleStorage", DType.F64,
          "LongStorage", DType.I64,
          "IntStorage", DType.I32,
          "ShortStorage", DType.I16,
          "CharStorage", DType.I8,
          "ByteStorage", DType.U8,
          "BoolStorage", DType.BOOL);

  /** Name to tensor (owning CPU copies, retained) in file order. */
  public static Map<String, Tensor> loadStateDict(Path file) throws IOException {
    try (ZipFile zip = new ZipFile(file.toFile())) {
      ZipEntry pkl =
          zip.stream()
              .filter(e -> e.getName().endsWith("/data.pkl") || e.getName().equals("data.pkl"))
              .findFirst()
              .orElseThrow(() -> new IOException(file + ": no data.pkl (not a torch.save zip)"));
      String prefix = pkl.getName().substring(0, pkl.getName().length() - "data.pkl".length());
      Object root;
      try (var in = zip.getInputStream(pkl)) {
        root = new Machine(file, in.readAllBytes()).run();
      }
      if (!(root instanceof Map<?, ?> dict))
        throw new IOException(file + ": the pickle is not a dict of tensors");
      Map<String, Tensor> out = new LinkedHashMap<>();
      for (var e : dict.entrySet()) {
        if (!(e.getKey() instanceof String name) || !(e.getValue() instanceof TensorRef ref))
          throw new IOException(file + ": entry " + e.getKey() + " is not a named tensor");
        out.put(name, tensor(file, zip, prefix, name, ref));
      }
      return out;
    } catch (java.util.zip.ZipException e) {
      throw new IOException(
          file + ": not a zip archive (legacy torch.save format?): " + e.getMessage(), e);
    }
  }

  private static Tensor tensor(Path file, ZipFile zip, String prefix, String name, TensorRef r)
      throws IOException {
    ZipEntry e = zip.getEntry(prefix + "data/" + r.storage().key());
    if (e == null)
      throw new IOException(file + ": tensor " + name + " lacks storage " + r.storage().key());
    byte[] bytes;
    try (var in = zip.getInputStream(e)) {
      bytes = in.readAllBytes();
    }
    int es = r.storage().dtype().byteSize();
    if (r.shape().length != r.stride().length || r.offset() < 0)
      throw new IOException(
          file + ": tensor " + name + " has a negative offset or a stride of another rank");
    long last = r.offset();
    try {
      for (int i = 0; i < r.shape().length; i++) {
        if (r.shape()[i] < 0 || r.stride()[i] < 0)
          throw new IOException(file + ": tensor " + name + " has a negative size or stride");
        if (r.shape()[i] == 0) last = -1;
        else if (last >= 0)
          last = Math.addExact(last, Math.multiplyExact(r.shape()[i] - 1, r.stride()[i]));
      }
      if (last >= 0) Math.multiplyExact(last + 1, (long) es);
    } catch (ArithmeticException overflow) { // a hostile shape must not wrap into a "small" extent
      throw new IOException(file + ": tensor " + name + " reaches past 2^63 bytes");
    }
    if ((last + 1) * es > bytes.length)
      throw new IOException(
          file
              + ": tensor "
              + name
              + " reaches element "
              + last
              + " of a storage of "
              + bytes.length / es);
    try (Arena arena = Arena.ofConfined();
        Scope s = Scope.open()) {
      MemorySegment seg = arena.allocate(Math.max(bytes.length, 1), 64);
      MemorySegment.copy(bytes, 0, seg, ValueLayout.JAVA_BYTE, 0, bytes.length);
      Tensor view =
          Torch.fromAddress(
              seg.address() + r.offset() * es, r.storage().dtype(), r.shape(), r.stride());
      return view.contiguous().copy().retain(); // own the data before the arena closes
    }
  }

  /** The pickle interpreter: a stack, a memo and marks, nothing more. */
  private static final class Machine {
    final Path file;
    final ByteBuffer in;
    final Deque<Object> stack = new ArrayDeque<>();
    final Deque<Integer> marks = new ArrayDeque<>();
    final Map<Long, Object> memo = new HashMap<>();
    final List<Object> items = new ArrayList<>();

    Machine(Path file, byte[] data) {
      this.file = file;
      this.in = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    }

    IOException bad(String what) {
      return new IOException(file + ": data.pkl at byte " + in.position() + ": " + what);
    }

    Object run() throws IOException {
      try {
        while (true) {
          int op = in.get() & 0xff;
          switch (op) {
            case 0x80 -> in.get(); // PROTO
            case 0x95 -> in.getLong(); // FRAME
            case '.' -> {
              return pop();
            }
            case 'c' -> push(global(line(), line()));
            case 0x93 -> {
              Object name = pop(), module = pop();
              push(global((String) module, (String) name));
            }
            case 'q' -> memo.put((long) (in.get() & 0xff), stack.peek());
            case 'r' -> memo.put(in.getInt() & 0xffffffffL, stack.peek());
            case 0x94 -> memo.put((long) memo.size(), stack.peek());
            case 'h' -> push(memo(in.get() & 0xff));
            case 'j' -> push(memo(in.getInt() & 0xffffffffL));
            case '(' -> marks.push(stack.size());
            case ')' -> push(List.of());
            // tuples may hold None (null), which List.of refuses
            case 't' -> push(Collections.unmodifiableList(popToMark()));
            case 0x85 -> push(Collections.singletonList(pop()));
            case 0x86 -> {
              Object b = pop(), a = pop();
              push(Arrays.asList(a, b));
            }
            case 0x87 -> {
              Object c = pop(), b = pop(), a = pop();
              push(Arrays.asList(a, b, c));
            }
            case '}' -> push(new LinkedHashMap<Object, Object>());
            case ']' -> push(new ArrayList<>());
            case 'a' -> {
              Object v = pop();
              list(stack.peek()).add(v);
            }
            case 'e' -> {
              List<Object> vs = popToMark();
              list(stack.peek()).addAll(vs);
            }
            case 's' -> {
              Object v = pop(), k = pop();
              dict(stack.peek()).put(key(k), v);
            }
            case 'u' -> {
              List<Object> kv = popToMark();
              Map<Object, Object> d = dict(stack.peek());
              for (int i = 0; i + 1 < kv.size(); i += 2) d.put(key(kv.get(i)), kv.get(i + 1));
            }
            case 'X' -> push(string(in.getInt()));
            case 0x8c -> push(string(in.get() & 0xff));
            case 'J' -> push((long) in.getInt());
            case 'K' -> push((long) (in.get() & 0xff));
            case 'M' -> push((long) (in.getShort() & 0xffff));
            case 0x8a -> push(long1());
            case 'G' -> push(in.order(ByteOrder.BIG_ENDIAN).getDouble()); // BINFLOAT is big-endian
            case 0x88 -> push(Boolean.TRUE);
            case 0x89 -> push(Boolean.FALSE);
            case 'N' -> push(null);
            case 'Q' -> push(persistent(pop()));
            case 'R' -> {
              Object args = pop(), fn = pop();
              push(reduce(fn, (List<?>) args));
            }
            case 'b' -> pop(); // BUILD: the state dict's _metadata (version info) is not needed
            default -> throw bad(String.format("opcode 0x%02x is not used by state dicts", op));
          }
          in.order(ByteOrder.LITTLE_ENDIAN);
        }
      } catch (java.nio.BufferUnderflowException e) {
        throw bad("truncated pickle");
      } catch (ClassCastException
          | java.util.NoSuchElementException
          | IndexOutOfBoundsException
          | NullPointerException
          | UnsupportedOperationException e) {
        // an opcode met operands of the wrong kind or number (e.g. SETITEM on an empty stack,
        // APPEND to a tuple)
        throw bad("malformed pickle (" + e + ")");
      }
    }

    void push(Object o) {
      if (o == null) stack.push(MARK_NONE);
      else stack.push(o);
    }

    Object pop() {
      Object o = stack.pop();
      return o == MARK_NONE ? null : o;
    }

    static final Object MARK_NONE = new Object();

    List<Object> popToMark() {
      int depth = marks.pop();
      List<Object> out = new ArrayList<>();
      while (stack.size() > depth) out.addFirst(pop());
      return out;
    }

    /**
     * A dict key must be a scalar, as Python's hashable keys of a state dict are: hashing a list
     * that contains itself (easy to build with the memo) would overflow the stack.
     */
    Object key(Object k) throws IOException {
      if (k == null || k instanceof String || k instanceof Long || k instanceof Boolean) return k;
      throw bad(
          "a dict key of type " + k.getClass().getSimpleName() + " (state dicts use strings)");
    }

    Object memo(long k) throws IOException {
      if (!memo.containsKey(k)) throw bad("memo " + k + " is not set");
      Object o = memo.get(k);
      return o == MARK_NONE ? null : o;
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Object o) {
      return (List<Object>) o;
    }

    @SuppressWarnings("unchecked")
    static Map<Object, Object> dict(Object o) {
      return (Map<Object, Object>) o;
    }

    String line() {
      StringBuilder b = new StringBuilder();
      for (byte c; (c = in.get()) != '\n'; ) b.append((char) c);
      return b.toString();
    }

    String string(int n) throws IOException {
      if (n < 0 || n > in.remaining()) throw bad("string of " + n + " bytes");
      byte[] b = new byte[n];
      in.get(b);
      return new String(b, StandardCharsets.UTF_8);
    }

    long long1() throws IOException {
      int n = in.get() & 0xff;
      if (n > 8) throw bad("integer of " + n + " bytes");
      long v = 0;
      for (int i = 0; i < n; i++) v |= (long) (in.get() & 0xff) << (8 * i);
      if (n > 0 && n < 8 && (v >> (8 * n - 1) & 1) == 1) v |= -1L << (8 * n);
      return v;
    }

    Object global(String module, String name) throws IOException {
      boolean allowed =
          (module.equals("collections") && name.equals("OrderedDict"))
              || (module.equals("torch._utils") && name.equals("_rebuild_tensor_v2"))
              || (module.equals("torch") && STORAGES.containsKey(name));
      if (!allowed)
        throw bad(
            "refuses to load '" + module + "." + name + "' (only tensors and dicts are read)");
      return new Global(module, name);
    }

    Object persistent(Object pid) throws IOException {
      List<?> t = (List<?>) pid;
      if (t.size() < 3
          || !"storage".equals(t.get(0))
          || !(t.get(1) instanceof Global g)
          || !STORAGES.containsKey(g.name()))
        throw bad("unexpected persistent id"); // not printed: it may be a cyclic list
      return new StorageRef((String) t.get(2), STORAGES.get(g.name()));
    }

    Object reduce(Object fn, List<?> args) throws IOException {
      if (!(fn instanceof Global g)) throw bad("REDUCE of a non-callable");
      if (g.name().equals("OrderedDict")) return new LinkedHashMap<Object, Object>();
      if (g.name().equals("_rebuild_tensor_v2")) {
        StorageRef st = (StorageRef) args.get(0);
        return new TensorRef(st, (Long) args.get(1), longs(args.get(2)), longs(args.get(3)));
      }
      throw bad("cannot call " + g);
    }

    static long[] longs(Object o) {
      List<?> l = (List<?>) o;
      long[] r = new long[l.size()];
      for (int i = 0; i < r.length; i++) r[i] = (Long) l.get(i);
      return r;
    }
  }

  static String describe(long[] a) {
    return Arrays.toString(a);
  }
}
