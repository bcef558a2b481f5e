package io.loraspark.train.model.quant;

import java.nio.FloatBuffer;
import java.util.Arrays;

/**
 * QLoRA's 4-bit NormalFloat storage (Dettmers et al. 2023, arXiv:2305.14314, §3), laid out as
 * bitsandbytes' {@code quantize_4bit(quant_type="nf4", blocksize=64)}: the row-major matrix is cut
 * into blocks of {@value #BLOCK} values; each block keeps its absmax, and each value the index of
 * the nearest of the 16 {@link #LEVELS} to {@code w / absmax}, two codes per byte (the first in the
 * high nibble). With double quantization ({@code compress_statistics=True}, §3 "Double
 * Quantization") the block absmaxes are stored as 8-bit codes of {@link DynamicMap} in blocks of
 * {@value #SCALE_BLOCK} around their mean: {@code absmax ≈ map[q] · absmax₂ + mean}.
 *
 * @param packed two 4-bit codes per byte, [⌈rows·cols / 2⌉]
 * @param absmax the block absmaxes as float32 when not double-quantised, else null
 * @param absmaxCodes the block absmaxes' 8-bit codes when double-quantised, else null
 * @param absmax2 absmax of each block of {@value #SCALE_BLOCK} centred absmaxes, else null
 * @param offset the mean block absmax subtracted before double quantization (0 without)
 */
public record Nf4Matrix(
    int rows,
    int cols,
    byte[] packed,
    float[] absmax,
    byte[] absmaxCodes,
    float[] absmax2,
    float offset)
    implements QuantizedMatrix {

  /** Values per absmax block, bitsandbytes' QLoRA default. */
  public static final int BLOCK = 64;

  /** Block absmaxes per second-level scale when double-quantised. */
  public static final int SCALE_BLOCK = 256;

  /**
   * The NF4 data type: bitsandbytes' {@code get_4bit_type("nf4")} table, the quantiles of N(0, 1)
   * normalised to [−1, 1] with an exact zero (QLoRA Appendix E).
   */
  public static final float[] LEVELS = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f
  };

  /**
   * Quantizes a row-major float32 matrix.
   *
   * @param doubleQuant store the block absmaxes as 8-bit codes (bitsandbytes' compress_statistics)
   */
  public static Nf4Matrix quantize(float[] w, int rows, int cols, boolean doubleQuant) {
    int n = rows * cols;
    int blocks = (n + BLOCK - 1) / BLOCK;
    float[] absmax = new float[blocks];
    byte[] packed = new byte[(n + 1) / 2];
    for (int b = 0; b < blocks; b++) {
      int end = Math.min(n, (b + 1) * BLOCK);
      float m = 0;
      for (int i = b * BLOCK; i < end; i++) {
        m = Math.max(m, Math.abs(w[i]));
      }
      absmax[b] = m;
      float inv = m == 0 ? 0 : 1f / m; // bitsandbytes multiplies by 1/absmax
      for (int i = b * BLOCK; i < end; i++) {
        int code = nearest(w[i] * inv);
        packed[i >> 1] |= (byte) ((i & 1) == 0 ? code << 4 : code);
      }
    }
    if (!doubleQuant) {
      return new Nf4Matrix(rows, cols, packed, absmax, null, null, 0);
    }
    double sum = 0;
    for (float a : absmax) {
      sum += a;
    }
    float offset = (float) (sum / blocks);
    float[] centred = new float[blocks];
    for (int b = 0; b < blocks; b++) {
      centred[b] = absmax[b] - offset;
    }
    DynamicMap.Blockwise q = DynamicMap.quantize(centred, SCALE_BLOCK);
    return new Nf4Matrix(rows, cols, packed, null, q.codes(), q.absmax(), offset);
  }

  /** The index of the level nearest to {@code x} in [−1, 1] (ties to the upper level). */
  static int nearest(float x) {
    int i = Arrays.binarySearch(LEVELS, x);
    if (i >= 0) {
      return i;
    }
    int up = -i - 1;
    if (up == 0) {
      return 0;
    }
    if (up == LEVELS.length) {
      return LEVELS.length - 1;
    }
    return x - LEVELS[up - 1] < LEVELS[up] - x ? up - 1 : up;
  }

  /** The absmax of block {@code b} as the dequantisation sees it. */
  public float blockAbsmax(int b) {
    if (absmax != null) {
      return absmax[b];
    }
    return DynamicMap.CODE[absmaxCodes[b] & 0xFF] * absmax2[b / SCALE_BLOCK] + offset;
  }

  @Override
  public long storedBytes() {
    long scales =
        absmax != null ? 4L * absmax.length : absmaxCodes.length + 4L * absmax2.length + 4;
    return packed.length + scales;
  }

  @Override
  public void dequantize(FloatBuffer out) {
    int n = rows * cols;
    int blocks = (n + BLOCK - 1) / BLOCK;
    for (int b = 0; b < blocks; b++) {
      float m = blockAbsmax(b);
      int end = Math.min(n, (b + 1) * BLOCK);
      for (int i = b * BLOCK; i < end; i++) {
        int code = (i & 1) == 0 ? (packed[i >> 1] >> 4) & 0xF : packed[i >> 1] & 0xF;
        out.put(i, LEVELS[code] * m);
      }
    }
  }
}
