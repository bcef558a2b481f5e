package io.loraspark.train.model.quant;

import java.nio.FloatBuffer;

/**
 * LLM.int8()'s vector-wise weight quantization without the outlier split (Dettmers et al. 2022,
 * arXiv:2208.07339, §3.1): each output row r keeps a scale {@code absmax_r / 127} and codes {@code
 * round(w / scale)} in [−127, 127], so {@code w ≈ code · scale} with error at most scale / 2.
 *
 * @param codes row-major codes, [rows · cols]
 * @param scales one scale per row (0 for an all-zero row)
 */
public record Int8Matrix(int rows, int cols, byte[] codes, float[] scales)
    implements QuantizedMatrix {

  /** Quantizes a row-major float32 matrix. */
  public static Int8Matrix quantize(float[] w, int rows, int cols) {
    byte[] codes = new byte[rows * cols];
    float[] scales = new float[rows];
    for (int r = 0; r < rows; r++) {
      float absmax = 0;
      for (int c = 0; c < cols; c++) {
        absmax = Math.max(absmax, Math.abs(w[r * cols + c]));
      }
      float scale = absmax / 127f;
      scales[r] = scale;
      for (int c = 0; c < cols; c++) {
        int i = r * cols + c;
        codes[i] = scale == 0 ? 0 : (byte) Math.max(-127, Math.min(127, Math.round(w[i] / scale)));
      }
    }
    return new Int8Matrix(rows, cols, codes, scales);
  }

  @Override
  public long storedBytes() {
    return codes.length + 4L * scales.length;
  }

  @Override
  public void dequantize(FloatBuffer out) {
    for (int r = 0; r < rows; r++) {
      float scale = scales[r];
      int base = r * cols;
      for (int c = 0; c < cols; c++) {
        out.put(base + c, codes[base + c] * scale);
      }
    }
  }
}
