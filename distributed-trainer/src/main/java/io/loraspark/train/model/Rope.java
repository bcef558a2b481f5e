package io.loraspark.train.model;

import org.nd4j.linalg.api.buffer.DataType;

/**
 * Rotary position embeddings in Hugging Face's rotate-half layout (Su et al. 2021, RoFormer): for a
 * head vector x at position p, {@code x' = x * cos(p θ) + rotate_half(x) * sin(p θ)} with {@code
 * rotate_half(x) = [-x2, x1]} and θ_i = base^(-2i/HD), the frequencies repeated for both halves.
 * This class holds the frequencies and walks the per-row tables; {@link RopeKernels} writes them
 * and rotates.
 */
final class Rope {
  /** One table entry: {@code cos} and {@code sin} at flat index {@code index} of [rows, HD]. */
  interface Entry {
    void put(int index, double cos, double sin);
  }

  final int headDim; // HD
  private final double[] invFreq; // θ_i, [HD/2]
  private final boolean float32Angles;

  Rope(int headDim, double theta, DataType dtype) {
    this.headDim = headDim;
    this.float32Angles = dtype == DataType.FLOAT;
    int half = headDim / 2;
    invFreq = new double[half];
    for (int i = 0; i < half; i++) {
      invFreq[i] = round(1.0 / Math.pow(theta, (2.0 * i) / headDim));
    }
  }

  /**
   * Gives every entry of per-row cos and sin tables [N*heads, HD] for a batch: row {@code n * heads
   * + h} gets the angles of position {@code positions[n]}, equal in both halves.
   */
  void tables(int[] positions, int heads, Entry entry) {
    int half = headDim / 2;
    for (int n = 0; n < positions.length; n++) {
      for (int i = 0; i < half; i++) {
        double angle = round(positions[n] * invFreq[i]);
        double cv = Math.cos(angle);
        double sv = Math.sin(angle);
        for (int h = 0; h < heads; h++) {
          int base = (n * heads + h) * headDim;
          entry.put(base + i, cv, sv);
          entry.put(base + i + half, cv, sv);
        }
      }
    }
  }

  /**
   * In float32 models, angles are rounded to float32 as transformers' LlamaRotaryEmbedding does.
   */
  private double round(double v) {
    return float32Angles ? (float) v : v;
  }
}
