package dev.hanlin.model;

import dev.hanlin.torch.DType;
import dev.hanlin.torch.Device;
import dev.hanlin.torch.Tensor;
import dev.hanlin.torch.Torch;

/**
 * Keys and values of every layer for the tokens seen so far, preallocated to a maximum length so
 * that decoding writes in place. Shapes: B = batch, KV = key/value heads, S = capacity, D = head
 * dim. Its tensors live as long as the cache (they are made outside any step scope).
 */
public final class KvCache {
  private final Tensor[] keys;
  private final Tensor[] values;
  private final long capacity;
  private long length;

  public KvCache(LlamaConfig c, long batch, long capacity, DType dtype, Device device) {
    this.capacity = capacity;
    keys = new Tensor[c.numHiddenLayers()];
    values = new Tensor[c.numHiddenLayers()];
    for (int i = 0; i < keys.length; i++) {
      keys[i] =
          Torch.zeros(dtype, device, batch, c.numKeyValueHeads(), capacity, c.headDim()).retain();
      values[i] =
          Torch.zeros(dtype, device, batch, c.numKeyValueHeads(), capacity, c.headDim()).retain();
    }
  }

  /** Tokens cached so far: the position of the next token. */
  public long length() {
    return length;
  }

  /**
   * Writes {@code k}, {@code v} (B, KV, T, D) after the cached tokens; returns all (B, KV, S', D).
   */
  Tensor[] append(int layer, Tensor k, Tensor v) {
    long t = k.size(2);
    if (length + t > capacity)
      throw new IllegalStateException(
          "KV cache full: " + length + " + " + t + " tokens > capacity " + capacity);
    keys[layer].narrow(2, length, t).copy_(k);
    values[layer].narrow(2, length, t).copy_(v);
    return new Tensor[] {
      keys[layer].narrow(2, 0, length + t), values[layer].narrow(2, 0, length + t)
    };
  }

  /** Marks {@code t} more tokens as cached, after every layer has appended them. */
  void advance(long t) {
    length += t;
  }

  /** Frees the cache's memory now. */
  public void free() {
    for (int i = 0; i < keys.length; i++) {
      keys[i].release();
      values[i].release();
    }
  }
}
