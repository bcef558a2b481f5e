package io.loraspark.train.model.precision;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.loraspark.train.model.Gemm;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * The adapters' oneDNN f32 GEMM against ND4J's on the same float32 inputs, in the six forms a LoRA
 * branch uses (rank 8, with a rank-1 and rank-3 case), on row-range views at an offset as the fused
 * batch passes them. Both are f32 with f32 accumulation in different orders, so they agree to 1e-5
 * of the largest magnitude (bf16 would be near 1e-2).
 */
class OneDnnF32GemmTest {
  private static final double TOL = 1e-5;
  private final Random rnd = new Random(3);

  @BeforeAll
  static void oneDnnLoads() {
    assertThat(OneDnn.probe().failure()).as("oneDNN must load on linux-x86_64").isEmpty();
  }

  @Test
  void theSixLoraProductsMatchNd4jOnRowRangeViews() {
    for (int r : new int[] {8, 3, 1}) {
      int rows = 37, in = 72, out = 130;
      INDArray xAll = randn(rows + 11, in);
      INDArray x = xAll.get(NDArrayIndex.interval(5, 5 + rows), NDArrayIndex.all());
      INDArray a = randn(r, in);
      INDArray b = randn(out, r);
      INDArray dyAll = randn(rows + 11, out);
      INDArray dy = dyAll.get(NDArrayIndex.interval(9, 9 + rows), NDArrayIndex.all());
      // name, a, b, c's shape, transA, transB, alpha, beta
      Object[][] forms = {
        {"u = x Aᵀ", x, a, new long[] {rows, r}, false, true, 1.0, 0.0},
        {"y += s u Bᵀ", randn(rows, r), b, new long[] {rows, out}, false, true, 0.5, 1.0},
        {"dB += s dyᵀ u", dy, randn(rows, r), new long[] {out, r}, true, false, 2.0, 1.0},
        {"dB = s dyᵀ u", dy, randn(rows, r), new long[] {out, r}, true, false, 2.0, 0.0},
        {"g = dy B", dy, b, new long[] {rows, r}, false, false, 1.0, 0.0},
        {"dA += s gᵀ x", randn(rows, r), x, new long[] {r, in}, true, false, 0.25, 1.0},
        {"dx += s g A", randn(rows, r), a, new long[] {rows, in}, false, false, 2.0, 1.0}
      };
      for (Object[] f : forms) {
        long[] shape = (long[]) f[3];
        INDArray start = randn((int) shape[0] + 4, (int) shape[1]);
        INDArray viaNd4j =
            start.dup().get(NDArrayIndex.interval(2, 2 + shape[0]), NDArrayIndex.all());
        INDArray viaOneDnnAll = start.dup();
        INDArray viaOneDnn =
            viaOneDnnAll.get(NDArrayIndex.interval(2, 2 + shape[0]), NDArrayIndex.all());
        run(Gemm.nd4j(), f, viaNd4j);
        run(OneDnnF32Gemm.INSTANCE, f, viaOneDnn);
        double scale = viaNd4j.amaxNumber().doubleValue();
        double err = viaOneDnn.sub(viaNd4j).amaxNumber().doubleValue() / scale;
        assertThat(err).as("%s at rank %d", f[0], r).isLessThan(TOL);
        assertThat(viaOneDnnAll.get(NDArrayIndex.interval(0, 2), NDArrayIndex.all()))
            .as("%s leaves the rows outside the view alone", f[0])
            .isEqualTo(start.get(NDArrayIndex.interval(0, 2), NDArrayIndex.all()));
      }
    }
  }

  @Test
  void refusesABetaItCannotHonour() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                OneDnnF32Gemm.INSTANCE.gemm(
                    randn(2, 3),
                    randn(3, 4),
                    Nd4j.create(DataType.FLOAT, 2, 4),
                    false,
                    false,
                    1,
                    0.5));
    assertThat(e.getMessage()).contains("beta 0 or 1");
  }

  @Test
  void rejectsMismatchedShapesNamingThem() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                OneDnnF32Gemm.INSTANCE.gemm(
                    randn(4, 8),
                    randn(5, 9),
                    Nd4j.create(DataType.FLOAT, 4, 5),
                    false,
                    true,
                    1,
                    0));
    assertThat(e.getMessage()).isEqualTo("gemm cannot take [4, 8] · [5, 9]ᵀ into [4, 5]");
  }

  private static void run(Gemm gemm, Object[] f, INDArray c) {
    gemm.gemm(
        (INDArray) f[1],
        (INDArray) f[2],
        c,
        (boolean) f[4],
        (boolean) f[5],
        (double) f[6],
        (double) f[7]);
  }

  private INDArray randn(int rows, int cols) {
    float[] v = new float[rows * cols];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) rnd.nextGaussian();
    }
    return Nd4j.createFromArray(v).reshape(rows, cols);
  }
}
