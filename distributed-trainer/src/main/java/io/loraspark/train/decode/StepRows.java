package io.loraspark.train.decode;

import java.util.Arrays;

/**
 * The rows of one decode step: token positions of any requests, each with its own token, position,
 * KV cache and adapter mix; prefill chunks and single decode tokens alike. Rows of one request must
 * come in increasing positions. Reused from step to step: {@link #clear}, {@link #add} rows, {@link
 * DecodeEngine#step}, read {@link #logits}. Grows when a step has more rows than any before it;
 * never allocates otherwise.
 */
public final class StepRows {
  int count;
  int[] tokens = new int[8];
  int[] positions = new int[8];
  KvCache[] caches = new KvCache[8];
  AdapterMix[] mixes = new AdapterMix[8];
  int[] logitRows = new int[8]; // the rows whose next-token logits are wanted, in order
  int logitCount;
  float[] logits = new float[0]; // [logitCount, V], filled by the engine

  /** Empties the step (keeps the arrays). */
  public void clear() {
    count = 0;
    logitCount = 0;
    Arrays.fill(caches, null);
    Arrays.fill(mixes, null);
  }

  /**
   * Adds a row.
   *
   * @param token the input token id at {@code position}
   * @param cache the request's cache, which gets this position's keys and values
   * @param mix the adapters of the request
   * @param wantLogits whether the next-token logits of this row are wanted (the last prompt token
   *     and every decode token)
   * @return the row's index into {@link #logits} when wanted, else -1
   */
  public int add(int token, int position, KvCache cache, AdapterMix mix, boolean wantLogits) {
    if (count == tokens.length) {
      int n = count * 2;
      tokens = Arrays.copyOf(tokens, n);
      positions = Arrays.copyOf(positions, n);
      caches = Arrays.copyOf(caches, n);
      mixes = Arrays.copyOf(mixes, n);
      logitRows = Arrays.copyOf(logitRows, n);
    }
    tokens[count] = token;
    positions[count] = position;
    caches[count] = cache;
    mixes[count] = mix;
    int slot = -1;
    if (wantLogits) {
      slot = logitCount;
      logitRows[logitCount++] = count;
    }
    count++;
    return slot;
  }

  public int count() {
    return count;
  }

  /** The logits of the wanted rows, [slots, V] row-major; valid until the next step. */
  public float[] logits() {
    return logits;
  }
}
