package dev.hanlin.model;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;

/**
 * Keys and values for several independent sequences, one slot each, so that a decode step can run
 * sequences of different lengths together (continuous batching). Each layer's keys are one tensor
 * (N·S, KV, D), N = slots, S = capacity per slot, KV = key/value heads, D = head dim: a step writes
 * all its new rows with one {@code index_copy_} (a flat row is {@code slot·S + position}), and
 * reads its slots back as (B, KV, L, D) with one {@code index_select}, L = the longest of them; the
 * attention mask hides the keys past each row's own position. The tensors live as long as the
 * cache.
 */
public final class SlotKvCache {
  private final Tensor[] keys;
  private final Tensor[] values;
  private final int slots;
  private final int capacity;
  private final int kvHeads;
  private final int headDim;

  public SlotKvCache(LlamaConfig c, int slots, int capacity, DType dtype, Device device) {
    if (slots < 1 || capacity < 1)
      throw new IllegalArgumentException("slots and capacity must be >= 1");
    this.slots = slots;
    this.capacity = capacity;
    this.kvHeads = c.numKeyValueHeads();
    this.headDim = c.headDim();
    keys = new Tensor[c.numHiddenLayers()];
    values = new Tensor[c.numHiddenLayers()];
    for (int i = 0; i < keys.length; i++) {
      keys[i] = Torch.zeros(dtype, device, (long) slots * capacity, kvHeads, headDim).retain();
      values[i] = Torch.zeros(dtype, device, (long) slots * capacity, kvHeads, headDim).retain();
    }
  }

  public int slots() {
    return slots;
  }

  /** Positions per slot. */
  public int capacity() {
    return capacity;
  }

  /**
   * What one forward step touches: {@code writeRows} (B·T) the flat rows of its new tokens, {@code
   * slots} (B) the slot of each batch row, {@code readLength} L the keys to read per slot.
   */
  record Step(Tensor writeRows, Tensor slots, long readLength) {}

  /**
   * Writes {@code k}, {@code v} (B, KV, T, D) to the step's rows; returns the keys and values of
   * the step's slots, (B, KV, L, D) each.
   */
  Tensor[] writeAndRead(int layer, Step step, Tensor k, Tensor v) {
    long b = k.size(0), t = k.size(2);
    keys[layer].indexCopy_(0, step.writeRows(), k.transpose(1, 2).reshape(b * t, kvHeads, headDim));
    values[layer].indexCopy_(
        0, step.writeRows(), v.transpose(1, 2).reshape(b * t, kvHeads, headDim));
    return new Tensor[] {read(keys[layer], step), read(values[layer], step)};
  }

  private Tensor read(Tensor flat, Step step) {
    // narrow before gathering, so the copy holds L positions per slot, not the whole capacity
    return flat.view(slots, capacity, kvHeads, headDim)
        .narrow(1, 0, step.readLength())
        .indexSelect(0, step.slots())
        .transpose(1, 2); // (B, KV, L, D)
  }

  /** Frees the cache's memory now. */
  public void free() {
    for (int i = 0; i < keys.length; i++) {
      keys[i].release();
      values[i].release();
    }
  }
}
