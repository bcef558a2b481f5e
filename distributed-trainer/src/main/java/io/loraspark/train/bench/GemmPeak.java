package io.loraspark.train.bench;

import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.precision.Bf16Gemms;
import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The GEMM throughput this process reaches with its current threads: the denominator of model FLOPs
 * utilisation. Measured on the model's own largest projection shape ({@code [N, C] x [F, C]^T},
 * written into a preallocated output, as the engine calls it): in float32 through ND4J always, and
 * in bf16 through oneDNN's packed matmul (activations converted per call, as the engine's bf16
 * GEMMs run) when the run is in bf16, so MFU compares the step against the best the library does on
 * the same work in the same precision.
 *
 * @param fp32Gflops ND4J's float32 GEMM, GFLOP/s
 * @param bf16Gflops oneDNN's bf16 matmul, GFLOP/s; NaN when not measured (an fp32 run)
 */
record GemmPeak(double fp32Gflops, double bf16Gflops) {
  static final int REPEATS = 7;
  static final double MIN_SECONDS = 0.15;
  static final int MAX_ROWS = 2048;

  /** The peaks for a step of {@code tokens} rows on {@code c}; bf16 too when {@code bf16}. */
  static GemmPeak measure(ModelConfig c, long tokens, boolean bf16) {
    int m = (int) Math.min(tokens, MAX_ROWS);
    int n = c.intermediateSize();
    int k = c.hiddenSize();
    INDArray a = Nd4j.rand(DataType.FLOAT, m, k).subi(0.5);
    INDArray b = Nd4j.rand(DataType.FLOAT, n, k).subi(0.5);
    INDArray out = Nd4j.create(DataType.FLOAT, m, n);
    double flops = 2.0 * m * n * k;
    double fp32 = rate(() -> Nd4j.gemm(a, b, out, false, true, 1.0, 0.0), flops);
    double bf = bf16 ? rate(Bf16Gemms.product(a, b, out), flops) : Double.NaN;
    return new GemmPeak(fp32, bf);
  }

  /** The peak of the precision that ran. */
  double of(boolean bf16) {
    return bf16 ? bf16Gflops : fp32Gflops;
  }

  /** Median GFLOP/s of {@code gemm} (one warm-up call, then timed batches of calls). */
  private static double rate(Runnable gemm, double flops) {
    gemm.run(); // warm-up
    long t0 = System.nanoTime();
    gemm.run();
    double once = (System.nanoTime() - t0) / 1e9;
    int reps = (int) Math.max(1, Math.ceil(MIN_SECONDS / Math.max(once, 1e-6)));
    double[] rates = new double[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
      long s = System.nanoTime();
      for (int i = 0; i < reps; i++) {
        gemm.run();
      }
      rates[r] = flops * reps / ((System.nanoTime() - s) / 1e9) / 1e9;
    }
    Arrays.sort(rates);
    return rates[REPEATS / 2];
  }
}
