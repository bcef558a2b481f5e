package io.loraspark.train.decode;

import io.loraspark.train.model.ModelConfig;

/**
 * One sequence's keys and values, per layer, for positions [0, capacity): the rotated keys and the
 * values of the KV heads only (NKV*HD per position, not NH*HD: grouped-query attention shares them
 * across the G query heads of a group), stored position-minor, {@code [NKV, HD, capacity]}, so
 * attention vectorises over positions for any head dim. Written by {@link DecodeEngine#step} at
 * each row's position, read by the rows at later positions. Allocated once per request, never per
 * token.
 */
public final class KvCache {
  final float[][] keys; // [L][NKV*HD * capacity]
  final float[][] values; // [L][NKV*HD * capacity]
  private final int capacity;

  /**
   * @param capacity the most positions the sequence will hold (prompt + new tokens)
   */
  public KvCache(ModelConfig c, int capacity) {
    ModelConfig.require(
        capacity > 0 && capacity <= c.maxPositions(),
        "a KV cache holds 1 to max_position_embeddings=%d positions, not %d",
        c.maxPositions(),
        capacity);
    long floats = (long) capacity * c.kvDim();
    ModelConfig.require(
        floats <= Integer.MAX_VALUE, "a KV cache of %d positions is too large", capacity);
    this.capacity = capacity;
    this.keys = new float[c.numLayers()][(int) floats];
    this.values = new float[c.numLayers()][(int) floats];
  }

  /** Writes the keys and values of {@code position} in layer {@code layer} from rows [NKV*HD]. */
  void put(int layer, int position, float[] k, float[] v, int from, int kvDim) {
    float[] keysL = keys[layer];
    float[] valuesL = values[layer];
    for (int i = 0; i < kvDim; i++) {
      keysL[i * capacity + position] = k[from + i];
      valuesL[i * capacity + position] = v[from + i];
    }
  }

  public int capacity() {
    return capacity;
  }
}
