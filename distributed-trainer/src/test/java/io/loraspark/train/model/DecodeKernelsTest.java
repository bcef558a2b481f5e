package io.loraspark.train.model;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The packed decode product ({@link DecodeKernels#pack}, {@link DecodeKernels#matmul}) against a
 * naive loop that computes each output as one in-order chain of {@link Math#fma}: equal bit for bit
 * (not within a tolerance), since batch invariance rests on exactly that chain. Output widths that
 * fill panels and that leave a padded last panel, an odd input width, every row count from 1 to 9
 * (the 4-row blocks and the lone-row paths), on 1 and 2 threads.
 */
class DecodeKernelsTest {
  private final Random rnd = new Random(11);

  @Test
  void packedProductIsTheInOrderFmaChainOfEveryOutput() {
    int before = Kernels.threads();
    try {
      for (int threads : new int[] {1, 2}) {
        Kernels.threads(threads);
        for (int out : new int[] {DecodeKernels.PANEL, 3 * DecodeKernels.PANEL + 5, 7, 1000}) {
          for (int rows = 1; rows <= 9; rows++) {
            check(out, 37, rows);
          }
        }
      }
    } finally {
      Kernels.threads(before);
    }
  }

  private void check(int out, int in, int rows) {
    int offset = 3; // floats before the matrix in its buffer, as in a view of a larger array
    ByteBuffer wb =
        ByteBuffer.allocateDirect((offset + out * in) * 4).order(ByteOrder.LITTLE_ENDIAN);
    float[] w = gaussian(out * in);
    for (int i = 0; i < w.length; i++) {
      wb.putFloat((offset + i) * 4, w[i]);
    }
    float[] x = gaussian(rows * in);
    float[] y = new float[rows * out];
    DecodeKernels.matmul(DecodeKernels.pack(wb, offset * 4, out, in), out, in, x, rows, y);
    for (int r = 0; r < rows; r++) {
      for (int j = 0; j < out; j++) {
        float want = 0f;
        for (int i = 0; i < in; i++) {
          want = Math.fma(w[j * in + i], x[r * in + i], want);
        }
        assertThat(Float.floatToRawIntBits(y[r * out + j]))
            .as("out %d rows %d: y[%d, %d]", out, rows, r, j)
            .isEqualTo(Float.floatToRawIntBits(want));
      }
    }
  }

  private float[] gaussian(int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) rnd.nextGaussian();
    }
    return a;
  }
}
