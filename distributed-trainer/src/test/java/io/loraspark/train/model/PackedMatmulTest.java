package io.loraspark.train.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.train.safetensors.HalfFloats;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The packed decode products ({@link PackedMatmul}) against a naive loop that computes each output
 * as one in-order chain of {@link Math#fma}: equal bit for bit (not within a tolerance), since
 * batch invariance rests on exactly that chain; the bf16 panels against the same chain over the
 * weights rounded by {@link HalfFloats#floatToBf16}. Output widths that fill panels and that leave
 * a padded last panel, an odd input width, every row count from 1 to 9 (the 4-row blocks, the lone
 * rows), on 1 and 2 threads.
 */
class PackedMatmulTest {
  private static final int[] OUTS = {PackedMatmul.PANEL, 3 * PackedMatmul.PANEL + 5, 7, 1000};
  private final Random rnd = new Random(11);

  @Test
  void float32PanelsGiveTheInOrderFmaChainOfEveryOutput() {
    forEachShape((out, in, rows) -> check(out, in, rows, false));
  }

  @Test
  void bf16PanelsGiveTheSameChainOverTheRoundedWeights() {
    forEachShape((out, in, rows) -> check(out, in, rows, true));
  }

  /**
   * bf16 against the float32 product on N(0,1) data: relative error (max |difference| over max
   * |float32 result|) under 1e-2, the bound the bf16 issue sets; bf16's 8-bit mantissa gives about
   * 3e-3 on sums of 576 terms.
   */
  @Test
  void bf16IsWithinItsRoundingOfFloat32() {
    int out = 192;
    int in = 576;
    int rows = 5;
    ByteBuffer wb = weights(gaussian(out * in), 0);
    float[] x = gaussian(rows * in);
    float[] y32 = new float[rows * out];
    float[] y16 = new float[rows * out];
    PackedMatmul.matmul(PackedMatmul.pack(wb, 0, out, in), out, in, x, rows, y32);
    PackedMatmul.matmul(PackedMatmul.packBf16(wb, 0, out, in), out, in, x, rows, y16);
    double maxDiff = 0;
    double maxRef = 0;
    for (int i = 0; i < y32.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(y32[i] - y16[i]));
      maxRef = Math.max(maxRef, Math.abs(y32[i]));
    }
    assertThat(maxDiff / maxRef).isLessThan(1e-2).isGreaterThan(0);
  }

  private interface Shape {
    void run(int out, int in, int rows);
  }

  private static void forEachShape(Shape shape) {
    int before = Kernels.threads();
    try {
      for (int threads : new int[] {1, 2}) {
        Kernels.threads(threads);
        for (int out : OUTS) {
          for (int rows = 1; rows <= 9; rows++) {
            shape.run(out, 37, rows);
          }
        }
      }
    } finally {
      Kernels.threads(before);
    }
  }

  private void check(int out, int in, int rows, boolean bf16) {
    int offset = 3; // floats before the matrix in its buffer, as in a view of a larger array
    float[] w = gaussian(out * in);
    ByteBuffer wb = weights(w, offset);
    float[] x = gaussian(rows * in);
    float[] y = new float[rows * out];
    if (bf16) {
      PackedMatmul.matmul(PackedMatmul.packBf16(wb, offset * 4, out, in), out, in, x, rows, y);
    } else {
      PackedMatmul.matmul(PackedMatmul.pack(wb, offset * 4, out, in), out, in, x, rows, y);
    }
    for (int r = 0; r < rows; r++) {
      for (int j = 0; j < out; j++) {
        float want = 0f;
        for (int i = 0; i < in; i++) {
          float wi = w[j * in + i];
          if (bf16) {
            wi = HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(wi));
          }
          want = Math.fma(wi, x[r * in + i], want);
        }
        assertThat(Float.floatToRawIntBits(y[r * out + j]))
            .as("bf16 %s, out %d, rows %d: y[%d, %d]", bf16, out, rows, r, j)
            .isEqualTo(Float.floatToRawIntBits(want));
      }
    }
  }

  private static ByteBuffer weights(float[] w, int offset) {
    ByteBuffer wb =
        ByteBuffer.allocateDirect((offset + w.length) * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < w.length; i++) {
      wb.putFloat((offset + i) * 4, w[i]);
    }
    return wb;
  }

  private float[] gaussian(int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) rnd.nextGaussian();
    }
    return a;
  }
}
