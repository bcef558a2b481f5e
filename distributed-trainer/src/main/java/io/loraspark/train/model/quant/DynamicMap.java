package io.loraspark.train.model.quant;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * bitsandbytes' signed 8-bit dynamic data type ({@code create_dynamic_map(signed=True,
 * max_exponent_bits=7, total_bits=8)}, Dettmers 2016, arXiv:1511.04561) and its block-wise absmax
 * quantization ({@code quantize_blockwise}), which QLoRA uses for the double-quantised NF4 scales.
 * The table is computed in double and rounded once to float32 (torch builds it with a float32
 * linspace, so entries may differ in the last bit).
 */
final class DynamicMap {

  /** The 256 sorted levels in [−1, 1]: 0, 1 and ±10^(i−6)·(midpoints of i-th linspace). */
  static final float[] CODE = build();

  /** Codes and per-block absmax of a block-wise quantised vector. */
  record Blockwise(byte[] codes, float[] absmax) {}

  private DynamicMap() {}

  private static float[] build() {
    List<Double> data = new ArrayList<>();
    for (int i = 0; i < 7; i++) {
      int items = (1 << i) + 1; // fraction_items = 2^(i + 7 - 7) + 1
      double scale = Math.pow(10, -6 + i);
      for (int k = 0; k + 1 < items; k++) {
        double lo = 0.1 + 0.9 * k / (items - 1);
        double hi = 0.1 + 0.9 * (k + 1) / (items - 1);
        double mean = (lo + hi) / 2;
        data.add(scale * mean);
        data.add(-scale * mean);
      }
    }
    data.add(0.0);
    data.add(1.0);
    float[] code = new float[data.size()];
    for (int i = 0; i < code.length; i++) {
      code[i] = (float) (double) data.get(i);
    }
    Arrays.sort(code);
    if (code.length != 256) {
      throw new IllegalStateException("dynamic map has " + code.length + " levels");
    }
    return code;
  }

  /** Block-wise absmax quantization of {@code v} to the nearest {@link #CODE} level. */
  static Blockwise quantize(float[] v, int block) {
    int blocks = (v.length + block - 1) / block;
    byte[] codes = new byte[v.length];
    float[] absmax = new float[blocks];
    for (int b = 0; b < blocks; b++) {
      int end = Math.min(v.length, (b + 1) * block);
      float m = 0;
      for (int i = b * block; i < end; i++) {
        m = Math.max(m, Math.abs(v[i]));
      }
      absmax[b] = m;
      for (int i = b * block; i < end; i++) {
        codes[i] = (byte) nearest(m == 0 ? 0 : v[i] / m);
      }
    }
    return new Blockwise(codes, absmax);
  }

  /** The index of the level nearest to {@code x} (ties to the upper level). */
  static int nearest(float x) {
    int i = Arrays.binarySearch(CODE, x);
    if (i >= 0) {
      return i;
    }
    int up = -i - 1;
    if (up == 0) {
      return 0;
    }
    if (up == CODE.length) {
      return CODE.length - 1;
    }
    return x - CODE[up - 1] < CODE[up] - x ? up - 1 : up;
  }
}
