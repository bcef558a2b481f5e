package io.loraspark.train.bench;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The float32 GEMM throughput this process reaches with its current threads: the denominator of
 * model FLOPs utilisation. Measured on the model's own largest projection shape ({@code [N, C] x
 * [F, C]^T}, written into a preallocated output with a transpose flag, as the engine calls it), so
 * MFU compares the step against the best the BLAS does on the same work.
 */
final class GemmPeak {
  static final int REPEATS = 7;
  static final double MIN_SECONDS = 0.15;

  private GemmPeak() {}

  /**
   * Median GFLOP/s of {@code c = a b^T} with a [m, k], b [n, k].
   *
   * @return GFLOP/s (1e9 float operations per second)
   */
  static double measure(int m, int n, int k) {
    INDArray a = Nd4j.rand(DataType.FLOAT, m, k);
    INDArray b = Nd4j.rand(DataType.FLOAT, n, k);
    INDArray c = Nd4j.create(DataType.FLOAT, m, n);
    double flops = 2.0 * m * n * k;
    Nd4j.gemm(a, b, c, false, true, 1.0, 0.0); // warm-up
    int reps = 1;
    long t0 = System.nanoTime();
    Nd4j.gemm(a, b, c, false, true, 1.0, 0.0);
    double once = (System.nanoTime() - t0) / 1e9;
    reps = (int) Math.max(1, Math.ceil(MIN_SECONDS / Math.max(once, 1e-6)));
    double[] rates = new double[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
      long s = System.nanoTime();
      for (int i = 0; i < reps; i++) {
        Nd4j.gemm(a, b, c, false, true, 1.0, 0.0);
      }
      rates[r] = flops * reps / ((System.nanoTime() - s) / 1e9) / 1e9;
    }
    java.util.Arrays.sort(rates);
    return rates[REPEATS / 2];
  }
}
