package io.loraspark.train.model.precision;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * The bf16 matmul against a naive double-precision product of the same fp32 inputs, on N(0,1) data.
 * Error measure: max |C − C_ref| / max |C_ref|. bf16 keeps 8 significant bits (relative rounding
 * 2⁻⁹ ≈ 2e-3 per input), products accumulate in f32, so the error must stay under 1e-2 and, since
 * the inputs really were rounded, above 1e-4 (an fp32 product would be near 1e-6).
 */
class PackedBf16MatmulTest {
  private static final double MAX_ERR = 1e-2;
  private static final double MIN_ERR = 1e-4;

  private final Random rnd = new Random(21);

  @BeforeAll
  static void oneDnnLoads() {
    OneDnn.Probe p = OneDnn.probe();
    assertThat(p.failure()).as("oneDNN must load on linux-x86_64").isEmpty();
  }

  /**
   * Row counts and widths around oneDNN's blocks (16, 32, 64) and their tails, both directions: the
   * grid that found 2.5.2's wrong columns for a packed B with 32 < N < 64 (now kept row-major).
   */
  @Test
  void forwardAndInputGradMatchFp32OverShapesAroundTheBlocks() {
    for (int rows : new int[] {1, 7, 37, 64, 130}) {
      for (int out : new int[] {16, 40, 48, 64, 80, 176}) {
        int in = rows % 2 == 0 ? 96 : 64;
        INDArray w = randn(out, in); // [out, in]
        INDArray x = randn(rows, in);
        INDArray y = Nd4j.create(DataType.FLOAT, rows, out);
        new PackedBf16Matmul(w, true, rows).multiply(x, y, false);
        assertClose(y, naive(x, w.transpose(), null), "x·Wᵀ " + rows + "x" + in + "x" + out);
        INDArray dy = randn(rows, out);
        INDArray dx = Nd4j.create(DataType.FLOAT, rows, in);
        new PackedBf16Matmul(w, false, rows).multiply(dy, dx, false);
        assertClose(dx, naive(dy, w, null), "dy·W " + rows + "x" + out + "x" + in);
      }
    }
  }

  @Test
  void inputGradientMatchesFp32ProductAndAccumulates() {
    int rows = 50, in = 72, out = 112;
    INDArray w = randn(out, in); // [out, in]
    INDArray dy = randn(rows, out);
    INDArray dx = Nd4j.create(DataType.FLOAT, rows, in);
    PackedBf16Matmul nn = new PackedBf16Matmul(w, false, rows);
    nn.multiply(dy, dx, false);
    assertClose(dx, naive(dy, w, null), "dy·W");
    INDArray before = randn(rows, in);
    INDArray acc = before.dup();
    nn.multiply(dy, acc, true);
    assertClose(acc, naive(dy, w, before), "dx + dy·W");
  }

  @Test
  void readsAndWritesRowRangeViewsInPlace() {
    int in = 64, out = 48;
    INDArray w = randn(out, in);
    INDArray xAll = randn(30, in);
    INDArray yAll = Nd4j.zeros(DataType.FLOAT, 30, out);
    INDArray x = xAll.get(NDArrayIndex.interval(10, 20), NDArrayIndex.all());
    INDArray y = yAll.get(NDArrayIndex.interval(5, 15), NDArrayIndex.all());
    new PackedBf16Matmul(w, true, 10).multiply(x, y, false);
    assertClose(y, naive(x, w.transpose(), null), "views at row offsets");
    assertThat(yAll.get(NDArrayIndex.interval(0, 5), NDArrayIndex.all()).sumNumber().doubleValue())
        .as("rows outside the view stay untouched")
        .isZero();
    assertThat(
            yAll.get(NDArrayIndex.interval(15, 30), NDArrayIndex.all()).sumNumber().doubleValue())
        .isZero();
  }

  @Test
  void weightIsConvertedOnceAndReusedForOtherRowCounts() {
    INDArray w = randn(96, 64);
    PackedBf16Matmul m = new PackedBf16Matmul(w, true, 32);
    INDArray expected = naive(randnSeeded(7, 32, 64), w.transpose(), null);
    long bytes = m.packedBytes();
    assertThat(bytes)
        .as("packed bf16 takes 2 bytes a weight, padded")
        .isBetween(2L * 96 * 64, 4L * 96 * 64);
    w.assign(0); // the fp32 source is not read again
    INDArray y = Nd4j.create(DataType.FLOAT, 32, 96);
    m.multiply(randnSeeded(7, 32, 64), y, false);
    assertClose(y, expected, "after the fp32 weight changed");
    INDArray y5 = Nd4j.create(DataType.FLOAT, 5, 96);
    m.multiply(
        randnSeeded(7, 32, 64).get(NDArrayIndex.interval(0, 5), NDArrayIndex.all()), y5, false);
    assertClose(y5, expected.get(NDArrayIndex.interval(0, 5), NDArrayIndex.all()), "5 rows");
    assertThat(m.packedBytes()).isEqualTo(bytes);
  }

  @Test
  void sameInputsGiveTheSameBits() {
    INDArray w = randn(128, 96);
    INDArray x = randn(64, 96);
    PackedBf16Matmul m = new PackedBf16Matmul(w, true, 64);
    INDArray a = Nd4j.create(DataType.FLOAT, 64, 128);
    INDArray b = Nd4j.create(DataType.FLOAT, 64, 128);
    m.multiply(x, a, false);
    m.multiply(x, b, false);
    assertThat(b.data().asFloat())
        .as("deterministic for a fixed thread count")
        .containsExactly(a.data().asFloat());
  }

  @Test
  void rejectsMismatchedShapes() {
    PackedBf16Matmul m = new PackedBf16Matmul(randn(8, 4), true, 2);
    IllegalArgumentException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            IllegalArgumentException.class,
            () -> m.multiply(randn(2, 5), Nd4j.create(DataType.FLOAT, 2, 8), false));
    assertThat(e.getMessage()).contains("B [4, 8]").contains("[2, 5]");
  }

  /** c0 + a·b in double from the float inputs (c0 may be null). */
  private static INDArray naive(INDArray a, INDArray b, INDArray c0) {
    int r = (int) a.rows(), k = (int) a.columns(), n = (int) b.columns();
    double[][] av = a.castTo(DataType.DOUBLE).toDoubleMatrix();
    double[][] bv = b.castTo(DataType.DOUBLE).toDoubleMatrix();
    double[][] out = new double[r][n];
    for (int i = 0; i < r; i++) {
      for (int j = 0; j < n; j++) {
        double s = c0 == null ? 0 : c0.getDouble(i, j);
        for (int t = 0; t < k; t++) {
          s += av[i][t] * bv[t][j];
        }
        out[i][j] = s;
      }
    }
    return Nd4j.createFromArray(out);
  }

  private static void assertClose(INDArray got, INDArray ref, String what) {
    INDArray g = got.castTo(DataType.DOUBLE);
    double err = g.sub(ref).amaxNumber().doubleValue() / ref.amaxNumber().doubleValue();
    assertTrue(err < MAX_ERR, what + ": relative error " + err + " must be < " + MAX_ERR);
    assertTrue(err > MIN_ERR, what + ": relative error " + err + " is below bf16 rounding");
  }

  private INDArray randn(int rows, int cols) {
    float[] v = new float[rows * cols];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) rnd.nextGaussian();
    }
    return Nd4j.createFromArray(v).reshape(rows, cols);
  }

  private static INDArray randnSeeded(long seed, int rows, int cols) {
    Random r = new Random(seed);
    float[] v = new float[rows * cols];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) r.nextGaussian();
    }
    return Nd4j.createFromArray(v).reshape(rows, cols);
  }
}
