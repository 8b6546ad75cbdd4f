package dev.hanlin.bench;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.PendingRead;
import dev.hanlin.torch.Scope;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;
import dev.hanlin.torch.optim.FusedAdamW;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Runs each CUDA call the trainer's step makes, one at a time, printing OK or the failure with its
 * stack trace: for finding which JavaCPP mapping misbehaves on the GPU machine.
 */
public final class CudaProbe {
  interface Check {
    String run() throws Exception;
  }

  static void check(String name, Check c) {
    try (Scope s = Scope.open()) {
      System.out.println("PROBE " + name + " OK " + c.run());
    } catch (Throwable t) {
      System.out.println("PROBE " + name + " FAIL " + t);
      t.printStackTrace(System.out);
    }
  }

  public static void main(String[] args) {
    Device d = Device.cuda(0);
    check(
        "pending-read-timing",
        () -> {
          PendingRead a = PendingRead.of(Torch.ones(DType.F32, d, 1));
          Tensor big = Torch.ones(DType.F32, d, 4096, 4096);
          for (int i = 0; i < 20; i++) big = big.matmul(big).div(4096.0);
          PendingRead b = PendingRead.of(big.sum());
          a.values();
          b.values();
          double sec = b.secondsSince(a);
          a.close();
          b.close();
          return "20 matmuls 4096^3 took " + sec * 1e3 + " ms on the GPU";
        });
    check(
        "rng-state",
        () -> {
          Tensor st = Torch.rngState(d);
          Torch.setRngState(d, st);
          return Arrays.toString(st.shape());
        });
    check(
        "pinned",
        () -> String.valueOf(Torch.empty(DType.F32, Device.CPU, 3).pinMemory().isPinned()));
    check(
        "event-default",
        () -> {
          var e = new org.bytedeco.pytorch.cuda.CUDAEvent();
          return "created=" + e.isCreated() + " address=" + e.address();
        });
    check(
        "event-flags0",
        () -> {
          var e = new org.bytedeco.pytorch.cuda.CUDAEvent(0);
          return "address=" + e.address();
        });
    check(
        "current-stream",
        () -> {
          var st = org.bytedeco.pytorch.global.torch_cuda.getCurrentCUDAStream((byte) 0);
          return "address=" + st.address();
        });
    check(
        "event-record",
        () -> {
          var e = new org.bytedeco.pytorch.cuda.CUDAEvent(0);
          e.record(org.bytedeco.pytorch.global.torch_cuda.getCurrentCUDAStream((byte) 0));
          e.synchronize();
          return "ok";
        });
    check(
        "pending-read",
        () -> {
          Tensor t = Torch.ones(DType.F32, d, 3).mul(2.0);
          return Arrays.toString(PendingRead.of(t).values());
        });
    check(
        "grad-norm+step",
        () -> {
          Tensor w = Torch.ones(DType.F32, d, 4, 4).retain().requiresGrad(true);
          Torch.linear(Torch.ones(DType.F32, d, 2, 4), w, null).sum().backward();
          Tensor norm = Torch.vectorNorm(w.grad(), DType.F32);
          Tensor found = norm.isFinite().logicalNot().toFloat();
          FusedAdamW.step(
              List.of(w),
              List.of(w.grad()),
              List.of(Torch.zeros(DType.F32, d, 4, 4)),
              List.of(Torch.zeros(DType.F32, d, 4, 4)),
              List.of(Torch.zeros(DType.F32, d)),
              1e-3,
              0.1,
              new FusedAdamW.Betas(0.9, 0.95, 1e-8),
              norm.add(1e-6).div(1.0).clampMin(1.0),
              found);
          return "norm=" + norm.item() + " found=" + found.item();
        });
  }
}
