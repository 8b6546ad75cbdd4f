package dev.hanlin.torch.dist;

import dev.hanlin.torch.Device;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import java.time.Duration;
import java.util.Collection;
import java.util.function.Supplier;
import org.bytedeco.javacpp.chrono.Milliseconds;
import org.bytedeco.pytorch.AllreduceOptions;
import org.bytedeco.pytorch.Backend;
import org.bytedeco.pytorch.BackendOptional;
import org.bytedeco.pytorch.BarrierOptions;
import org.bytedeco.pytorch.BroadcastOptions;
import org.bytedeco.pytorch.GlooDeviceVector;
import org.bytedeco.pytorch.LongVector;
import org.bytedeco.pytorch.PrefixStore;
import org.bytedeco.pytorch.ProcessGroup;
import org.bytedeco.pytorch.ProcessGroupGloo;
import org.bytedeco.pytorch.ReduceOp;
import org.bytedeco.pytorch.ReduceOptions;
import org.bytedeco.pytorch.ReduceScatterOptions;
import org.bytedeco.pytorch.Store;
import org.bytedeco.pytorch.StringVector;
import org.bytedeco.pytorch.TCPStore;
import org.bytedeco.pytorch.TCPStoreOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.Work;
import org.bytedeco.pytorch.global.torch.DeviceType;

/**
 * The ranks of a run, talking through libtorch's c10d: a TCPStore hosted by rank 0 for the
 * rendezvous, and a {@code c10d::ProcessGroup} with Gloo (CPU tensors) or NCCL (CUDA tensors) as
 * its backend. Every collective waits for completion and turns a failure (a peer that died, or no
 * answer within the timeout) into a {@link DistException} that says so. With one process every
 * collective is a no-op, so callers need no special case.
 */
public final class Group implements AutoCloseable {
  private final Dist dist;
  private final Device device;
  private final Duration timeout;
  private final Store store;
  private final Backend backend;
  private final ProcessGroup pg;

  /**
   * The TCPStore made here (on rank 0 without torchrun: the rendezvous server the other ranks talk
   * to), for the group's life. Only Java refers to it and JavaCPP deletes it when the group is
   * collected; c10d gets {@link #store}, a clone (see {@link #join}).
   */
  private TCPStore tcp;

  private Group(
      Dist dist, Device device, Duration timeout, Store store, Backend backend, ProcessGroup pg) {
    this.dist = dist;
    this.device = device;
    this.timeout = timeout;
    this.store = store;
    this.backend = backend;
    this.pg = pg;
  }

  /** The group of one process. */
  public static Group single() {
    return new Group(Dist.SINGLE, Device.CPU, Duration.ZERO, null, null, null);
  }

  /**
   * Joins the run's other ranks: blocks until all {@code dist.worldSize()} processes have met at
   * {@code MASTER_ADDR:MASTER_PORT} or {@code timeout} has passed. Collectives run on {@code
   * device}'s tensors: Gloo for the CPU, NCCL for CUDA.
   */
  public static Group join(Dist dist, Device device, Duration timeout) {
    if (!dist.isDistributed()) return single();
    long t0 = System.nanoTime();
    Milliseconds ms = new Milliseconds(timeout.toMillis());
    // under torchrun the agent already serves MASTER_PORT: every rank is a client there, and keys
    // are prefixed per restart, as torch.distributed's env:// rendezvous does
    boolean agent = "True".equals(System.getenv("TORCHELASTIC_USE_AGENT_STORE"));
    // One owner per native store. JavaCPP makes `new TCPStore`/`new PrefixStore` with a plain C++
    // new, and its deallocator deletes the object when the Java handle is collected; passed as a
    // c10::intrusive_ptr<Store> (to ProcessGroupGloo/NCCL, PrefixStore) the same raw object is
    // adopted by that reference count as well (the presets' IntrusivePtrAdapter:
    // unsafe_steal_from_new). Collecting a group then deleted the store while the backend still
    // held it, and the backend's release later wrote into the freed chunk, where glibc keeps its
    // free-list links: "malloc(): unsorted double linked list corrupted" (SIGABRT) at some later
    // allocation of any thread, or c10's refcount assert when the chunk was reused
    // (GroupLifetimeTest; once PrefixStore::set crashed the same way). So c10d only ever gets
    // clone()s, which libtorch makes with make_intrusive (another connection to the same server)
    // and which only reference counts own; the objects made with new stay with Java.
    TCPStore tcp;
    Store store;
    try {
      TCPStoreOptions so = new TCPStoreOptions();
      so.port((short) dist.masterPort())
          .isServer(dist.isMain() && !agent)
          .waitWorkers(false)
          .timeout(ms);
      tcp = new TCPStore(dist.masterAddr(), so);
      store = tcp.clone();
      if (agent) {
        String attempt = System.getenv().getOrDefault("TORCHELASTIC_RESTART_COUNT", "0");
        try (PrefixStore prefixed = new PrefixStore("/worker/attempt_" + attempt, store)) {
          store = prefixed.clone();
        }
      }
    } catch (RuntimeException e) {
      throw new DistException(
          String.format(
              "%s: cannot %s the rendezvous store at %s:%d within %d s: %s",
              dist,
              dist.isMain() && !agent ? "start" : "reach",
              dist.masterAddr(),
              dist.masterPort(),
              timeout.toSeconds(),
              firstLine(e)),
          e);
    }
    try {
      Backend backend;
      ProcessGroup pg = new ProcessGroup(dist.rank(), dist.worldSize());
      // not ProcessGroup(store, rank, size): it aborts the JVM (javacpp-pytorch.md, pitfall 9)
      if (device.isCuda()) {
        backend = Nccl.create(store, dist, device, ms);
        pg.setBackend(DeviceType.CUDA, ProcessGroup.BackendType.NCCL, new BackendOptional(backend));
        pg.setDefaultBackend(ProcessGroup.BackendType.NCCL);
      } else {
        ProcessGroupGloo.Options o = ProcessGroupGloo.Options.create(ms);
        o.devices(new GlooDeviceVector(glooDevice(dist)));
        backend = new ProcessGroupGloo(store, dist.rank(), dist.worldSize(), o);
        pg.setBackend(DeviceType.CPU, ProcessGroup.BackendType.GLOO, new BackendOptional(backend));
        pg.setDefaultBackend(ProcessGroup.BackendType.GLOO);
      }
      Group g = new Group(dist, device, timeout, store, backend, pg);
      g.tcp = tcp;
      g.barrier();
      return g;
    } catch (RuntimeException e) {
      throw new DistException(
          String.format(
              "%s: the ranks did not all meet within %.0f s (%s)",
              dist, (System.nanoTime() - t0) / 1e9, firstLine(e)),
          e);
    }
  }

  /**
   * Gloo's network device: loopback when the master is local, the interface in {@code
   * GLOO_SOCKET_IFNAME} when set (as in PyTorch), else the address this host's name resolves to.
   */
  private static org.bytedeco.pytorch.gloo.Device glooDevice(Dist dist) {
    String ifname = System.getenv("GLOO_SOCKET_IFNAME");
    if (ifname != null && !ifname.isBlank())
      return ProcessGroupGloo.createDeviceForInterface(ifname.split(",")[0]);
    String a = dist.masterAddr();
    if (a.equals("localhost") || a.startsWith("127.") || a.equals("::1"))
      return ProcessGroupGloo.createDeviceForHostname("127.0.0.1");
    return ProcessGroupGloo.createDefaultDevice();
  }

  /** Kept apart so the NCCL classes load only on CUDA machines. */
  private static final class Nccl {
    static Backend create(Store store, Dist dist, Device device, Milliseconds timeout) {
      org.bytedeco.pytorch.global.torch_cuda.set_device((byte) device.index());
      var o = new org.bytedeco.pytorch.nccl.ProcessGroupNCCL.Options();
      o.timeout(timeout);
      return new org.bytedeco.pytorch.nccl.ProcessGroupNCCL(
          store, dist.rank(), dist.worldSize(), o);
    }
  }

  public Dist dist() {
    return dist;
  }

  public boolean isDistributed() {
    return pg != null;
  }

  /** Where the collectives' tensors live: the CPU for Gloo, this rank's GPU for NCCL. */
  public Device device() {
    return device;
  }

  /**
   * The c10d process group, for the trainer's data-parallel gradient Reducer; null for a single
   * process.
   */
  public ProcessGroup nativeGroup() {
    return pg;
  }

  /** Copies rank {@code root}'s values of {@code tensors} into every rank's, in order. */
  public void broadcast(Collection<Tensor> tensors, int root) {
    if (pg == null) return;
    for (Tensor t : tensors)
      try (Scope s = Scope.open()) {
        Tensor d = t.detach();
        await("broadcast", () -> pg.broadcast(new TensorVector(d.raw()), opts(root)));
      }
  }

  private static BroadcastOptions opts(int root) {
    BroadcastOptions o = new BroadcastOptions();
    o.rootRank(root);
    return o;
  }

  /** Sums {@code t} over the ranks, in place. */
  public void allReduceSum(Tensor t) {
    if (pg == null) return;
    await(
        "all-reduce",
        () ->
            pg.allreduce(
                new TensorVector(t.raw()),
                new AllreduceOptions().reduceOp(new ReduceOp(ReduceOp.RedOpType.SUM))));
  }

  /** Each value summed over the ranks. */
  public double[] sum(double... values) {
    if (pg == null) return values.clone();
    try (Scope s = Scope.open()) {
      Tensor t =
          Tensor.wrap(
                  org.bytedeco.pytorch.global.torch.tensor(
                      new org.bytedeco.pytorch.DoubleArrayRef(
                          new org.bytedeco.javacpp.DoublePointer(values), values.length)))
              .to(device);
      allReduceSum(t);
      Tensor back = t.to(Device.CPU);
      double[] out = new double[values.length];
      for (int i = 0; i < out.length; i++) out[i] = back.select(0, i).item();
      return out;
    }
  }

  /** True on every rank when {@code flag} is true on any. */
  public boolean any(boolean flag) {
    return sum(flag ? 1 : 0)[0] > 0;
  }

  /**
   * Sums {@code t} over the ranks into rank {@code dst}'s {@code t}; on the other ranks {@code t}
   * is left unspecified (Gloo uses it as scratch), for values only {@code dst} needs.
   */
  public void reduceSum(Tensor t, int dst) {
    if (pg == null) return;
    await(
        "reduce",
        () ->
            pg.reduce(
                new TensorVector(t.raw()),
                new ReduceOptions().reduceOp(new ReduceOp(ReduceOp.RedOpType.SUM)).rootRank(dst)));
  }

  /**
   * Starts {@link #reduceSum} and returns at once: the reduce runs on Gloo's worker threads or
   * NCCL's stream while the caller goes on. {@code t} must stay alive and unchanged until {@link
   * Pending#await} returns; every rank must start the same collectives in the same order.
   */
  public Pending reduceSumAsync(Tensor t, int dst) {
    if (pg == null) return new Pending(null, "reduce", System.nanoTime());
    long t0 = System.nanoTime();
    try {
      Work w =
          pg.reduce(
              new TensorVector(t.raw()),
              new ReduceOptions().reduceOp(new ReduceOp(ReduceOp.RedOpType.SUM)).rootRank(dst));
      return new Pending(w, "reduce", t0);
    } catch (RuntimeException e) {
      throw failed("reduce", t0, e);
    }
  }

  /**
   * Starts {@link #allReduceSum} and returns at once, as {@link #reduceSumAsync} does: {@code t}
   * must stay alive and unchanged until {@link Pending#await} returns.
   */
  public Pending allReduceSumAsync(Tensor t) {
    if (pg == null) return new Pending(null, "all-reduce", System.nanoTime());
    long t0 = System.nanoTime();
    try {
      Work w =
          pg.allreduce(
              new TensorVector(t.raw()),
              new AllreduceOptions().reduceOp(new ReduceOp(ReduceOp.RedOpType.SUM)));
      return new Pending(w, "all-reduce", t0);
    } catch (RuntimeException e) {
      throw failed("all-reduce", t0, e);
    }
  }

  /** A collective started by an {@code ...Async} method, not yet known to be done. */
  public final class Pending {
    private final Work work;
    private final String what;
    private final long t0;

    private Pending(Work work, String what, long t0) {
      this.work = work;
      this.what = what;
      this.t0 = t0;
    }

    /**
     * Blocks until the collective is done (on NCCL: until the current CUDA stream waits for it), or
     * throws the {@link DistException} of a failed one.
     */
    public void await() {
      if (work == null) return;
      try {
        work._wait();
      } catch (RuntimeException e) {
        throw failed(what, t0, e);
      }
    }
  }

  /**
   * Every rank's {@code in} (same shape everywhere), concatenated in rank order into {@code out}.
   */
  public void allGather(Tensor out, Tensor in) {
    if (pg == null) {
      out.copy_(in.view(out.shape()));
      return;
    }
    await("all-gather", () -> pg._allgather_base(out.raw(), in.raw()));
  }

  /**
   * Starts {@link #allGather} and returns at once (ZeRO-3's prefetch of the next unit): on Gloo it
   * runs on the worker threads, on NCCL on its communication stream, which first waits for the work
   * queued on the current stream so far. {@code out} and {@code in} are kept referenced by the
   * returned {@link Gathering} until {@link Gathering#await} (which releases them), so a scope
   * closing meanwhile frees neither them nor the collective's handle; every rank must start the
   * same collectives in the same order. With one process the copy is done at once.
   */
  public Gathering allGatherAsync(Tensor out, Tensor in) {
    out.retain();
    in.retain();
    if (pg == null) {
      out.copy_(in.view(out.shape()));
      return new Gathering(null, out, in, System.nanoTime());
    }
    long t0 = System.nanoTime();
    try {
      Work w = pg._allgather_base(out.raw(), in.raw());
      w.retainReference(); // past the caller's scope, until await
      return new Gathering(w, out, in, t0);
    } catch (RuntimeException e) {
      out.release();
      in.release();
      throw failed("all-gather", t0, e);
    }
  }

  /** An all-gather started by {@link #allGatherAsync}: its handle and tensors, until awaited. */
  public final class Gathering {
    private Work work;
    private Tensor out, in;
    private final long t0;

    private Gathering(Work work, Tensor out, Tensor in, long t0) {
      this.work = work;
      this.out = out;
      this.in = in;
      this.t0 = t0;
    }

    /**
     * Waits for the gather and returns its output, still retained for the caller to {@link
     * Tensor#release} (once it has taken views of it, say): on Gloo the host blocks; on NCCL the
     * current CUDA stream is made to wait for the communication stream (no host sync), so kernels
     * queued after this see the gathered values. Once only; a failure is said as {@link #failed}
     * says it.
     */
    public Tensor await() {
      if (out == null) throw new IllegalStateException("all-gather awaited twice");
      Work w = work;
      Tensor o = out, i = in;
      work = null;
      out = null;
      in = null;
      try {
        if (w != null) w._wait();
      } catch (RuntimeException e) {
        throw failed("all-gather", t0, e);
      } finally {
        if (w != null) w.releaseReference();
        i.release();
      }
      return o;
    }
  }

  /**
   * {@code in} summed over the ranks; this rank keeps the {@code rank}-th equal slice in {@code
   * out}.
   */
  public void reduceScatterSum(Tensor out, Tensor in) {
    if (pg == null) {
      out.copy_(in.view(out.shape()));
      return;
    }
    await(
        "reduce-scatter",
        () ->
            pg._reduce_scatter_base(
                out.raw(),
                in.raw(),
                new ReduceScatterOptions().reduceOp(new ReduceOp(ReduceOp.RedOpType.SUM))));
  }

  /** Returns once every rank has called it, or fails after the group's timeout. */
  public void barrier() {
    if (pg == null) return;
    BarrierOptions o = new BarrierOptions().timeout(new Milliseconds(timeout.toMillis()));
    if (device.isCuda())
      o.device_ids(new LongVector(new long[] {device.index()})); // NCCL: not a guess
    await("barrier", () -> pg.barrier(o));
  }

  /**
   * Main rank: announces that {@code what} is done. Other ranks: wait for that up to {@code
   * patience}, for work only the main rank does that may take longer than a collective's timeout
   * (preparing a corpus).
   */
  public void mainDone(String what, Duration patience) {
    if (pg == null) return;
    String key = "hanlin/done/" + what;
    try {
      if (dist.isMain()) store.set(key, "1");
      else store._wait(new StringVector(key), new Milliseconds(patience.toMillis()));
    } catch (RuntimeException e) {
      throw new DistException(
          String.format(
              "%s: gave up waiting for rank 0 to finish %s: %s", dist, what, firstLine(e)),
          e);
    }
  }

  private void await(String what, Supplier<Work> op) {
    long t0 = System.nanoTime();
    try {
      op.get()._wait();
    } catch (RuntimeException e) {
      throw failed(what, t0, e);
    }
  }

  /** The error for a collective that failed after starting at {@code t0}. */
  public DistException failed(String what, long t0, RuntimeException e) {
    return new DistException(
        String.format(
            "%s: %s failed after %.1f s: %s. Another rank has probably died or hung"
                + " (dist_timeout_seconds=%d); the run can resume from its last checkpoint",
            dist, what, (System.nanoTime() - t0) / 1e9, firstLine(e), timeout.toSeconds()),
        e);
  }

  static String firstLine(Throwable e) {
    String m = String.valueOf(e.getMessage()).strip();
    int nl = m.indexOf('\n');
    return nl < 0 ? m : m.substring(0, nl);
  }

  /** Shuts the backend down (pending collectives fail on the peers, which then exit too). */
  @Override
  public void close() {
    if (backend == null) return;
    try {
      if (backend instanceof ProcessGroupGloo g) g.shutdown();
      else backend.shutdown();
    } catch (RuntimeException ignored) {
      // closing after a failure: the peers are gone already
    }
  }
}
