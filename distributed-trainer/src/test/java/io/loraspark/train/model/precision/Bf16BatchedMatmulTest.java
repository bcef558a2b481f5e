package io.loraspark.train.model.precision;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.loraspark.train.model.BatchedGemms;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Attention's bf16 batched matmul against a naive double-precision product of each matrix of the
 * same fp32 inputs, on N(0,1) data, for every transpose pair and a scale. Error measure per call:
 * max |C − C_ref| / max |C_ref|; bf16 rounds each input to 8 significant bits and products
 * accumulate in f32, so it must stay under 1e-2, and above 1e-4 (an fp32 product is near 1e-6): the
 * inputs really went through bf16.
 */
class Bf16BatchedMatmulTest {
  private static final double MAX_ERR = 1e-2;
  private static final double MIN_ERR = 1e-4;

  private final Random rnd = new Random(17);

  @BeforeAll
  static void oneDnnLoads() {
    assertThat(OneDnn.probe().failure()).as("oneDNN must load on linux-x86_64").isEmpty();
  }

  /** Every (transA, transB) pair, alpha 1 and 1/8, over shapes around oneDNN's blocks. */
  @Test
  void everyTransposePairMatchesTheProductOfEachMatrix() {
    everyTransposePairMatches(Bf16BatchedMatmul.INSTANCE);
  }

  /** The same with every transposed operand transposed by its conversion (the fallback layout). */
  @Test
  void everyTransposePairMatchesWithPlainCopies() {
    everyTransposePairMatches(new Bf16BatchedMatmul(false));
  }

  private void everyTransposePairMatches(BatchedGemms bf16) {
    int[][] shapes = {{3, 48, 64, 96}, {2, 130, 16, 7}, {4, 5, 72, 64}, {1, 64, 64, 64}};
    for (int[] s : shapes) {
      int x = s[0], m = s[1], k = s[2], n = s[3];
      for (boolean transA : new boolean[] {false, true}) {
        for (boolean transB : new boolean[] {false, true}) {
          for (double alpha : new double[] {1.0, 0.125}) {
            INDArray a = transA ? randn(x, k, m) : randn(x, m, k);
            INDArray b = transB ? randn(x, n, k) : randn(x, k, n);
            INDArray c = Nd4j.create(DataType.FLOAT, x, m, n);
            bf16.multiply(a, b, c, transA, transB, alpha);
            String what = String.format("%s %dx%dx%dx%d %s%s", alpha, x, m, k, n, transA, transB);
            assertClose(c, naive(a, b, transA, transB, alpha), what);
          }
        }
      }
    }
  }

  /** The fp32 per-matrix GEMMs and the bf16 batched one agree to bf16's rounding. */
  @Test
  void agreesWithThePerMatrixFp32Gemms() {
    INDArray p = randn(6, 96, 32); // probabilities' shape [X, G·T, T]
    INDArray dOut = randn(6, 96, 16);
    INDArray fp32 = Nd4j.create(DataType.FLOAT, 6, 32, 16);
    INDArray bf16 = Nd4j.create(DataType.FLOAT, 6, 32, 16);
    BatchedGemms.perMatrix().multiply(p, dOut, fp32, true, false, 1.0);
    Bf16BatchedMatmul.INSTANCE.multiply(p, dOut, bf16, true, false, 1.0);
    assertClose(bf16, fp32.castTo(DataType.DOUBLE), "dv = Pᵀ·dOut");
  }

  @Test
  void sameInputsGiveTheSameBitsAndShapesShareTheBuffers() {
    BatchedGemms bf16 = Bf16BatchedMatmul.INSTANCE;
    INDArray q = randn(3, 40, 16);
    INDArray k = randn(3, 20, 16);
    INDArray first = Nd4j.create(DataType.FLOAT, 3, 40, 20);
    INDArray again = Nd4j.create(DataType.FLOAT, 3, 40, 20);
    bf16.multiply(q, k, first, false, true, 0.25);
    bf16.multiply(
        randn(5, 64, 64),
        randn(5, 64, 64),
        Nd4j.create(DataType.FLOAT, 5, 64, 64),
        false,
        false,
        1);
    bf16.multiply(q, k, again, false, true, 0.25);
    assertThat(again.data().asFloat())
        .as("deterministic, also after a larger call grew the bf16 copies")
        .containsExactly(first.data().asFloat());
  }

  @Test
  void rejectsMismatchedShapesNamingThem() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                Bf16BatchedMatmul.INSTANCE.multiply(
                    randn(2, 4, 8),
                    randn(2, 9, 5),
                    Nd4j.create(DataType.FLOAT, 2, 4, 5),
                    false,
                    false,
                    1));
    assertThat(e.getMessage()).contains("[2, 4, 8]").contains("[2, 9, 5]");
  }

  /** alpha · op(a[x]) · op(b[x]) in double from the float inputs, for each x. */
  private static INDArray naive(
      INDArray a, INDArray b, boolean transA, boolean transB, double alpha) {
    int x = (int) a.size(0);
    INDArray out = null;
    for (int i = 0; i < x; i++) {
      double[][] av = a.slice(i).castTo(DataType.DOUBLE).toDoubleMatrix();
      double[][] bv = b.slice(i).castTo(DataType.DOUBLE).toDoubleMatrix();
      int m = transA ? av[0].length : av.length;
      int k = transA ? av.length : av[0].length;
      int n = transB ? bv.length : bv[0].length;
      if (out == null) {
        out = Nd4j.create(DataType.DOUBLE, x, m, n);
      }
      for (int r = 0; r < m; r++) {
        for (int c = 0; c < n; c++) {
          double s = 0;
          for (int t = 0; t < k; t++) {
            s += (transA ? av[t][r] : av[r][t]) * (transB ? bv[c][t] : bv[t][c]);
          }
          out.putScalar(new long[] {i, r, c}, alpha * s);
        }
      }
    }
    return out;
  }

  private static void assertClose(INDArray got, INDArray ref, String what) {
    INDArray g = got.castTo(DataType.DOUBLE);
    double err = g.sub(ref).amaxNumber().doubleValue() / ref.amaxNumber().doubleValue();
    assertTrue(err < MAX_ERR, what + ": relative error " + err + " must be < " + MAX_ERR);
    assertTrue(err > MIN_ERR, what + ": relative error " + err + " is below bf16 rounding");
  }

  private INDArray randn(int x, int rows, int cols) {
    float[] v = new float[x * rows * cols];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) rnd.nextGaussian();
    }
    return Nd4j.createFromArray(v).reshape(x, rows, cols);
  }
}
