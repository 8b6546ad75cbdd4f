package dev.hanlin.data.loader;

import dev.hanlin.data.Cursor;
import dev.hanlin.torch.Tensor;

/**
 * One step's blocks for this rank: {@code tokens} is (B, T + 1) int64 on the loader's device;
 * inputs are its first T columns and targets its last T. {@code cursor} is where the loader stands
 * after this batch: save it with the checkpoint that includes this step. The caller owns the
 * tensor.
 */
public record Batch(Tensor tokens, Cursor cursor) implements AutoCloseable {

  /** (B, T): the tokens the model reads, contiguous (so {@code view} works on it). */
  public Tensor inputs() {
    return tokens.narrow(1, 0, tokens.size(1) - 1).contiguous();
  }

  /** (B, T): the next token at every position, the labels, contiguous. */
  public Tensor targets() {
    return tokens.narrow(1, 1, tokens.size(1) - 1).contiguous();
  }

  @Override
  public void close() {
    tokens.close();
  }
}
