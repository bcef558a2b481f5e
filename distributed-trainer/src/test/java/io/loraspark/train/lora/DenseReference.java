package io.loraspark.train.lora;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Scalar-loop references for the family's forward tests: each builds the dense weight its paper
 * says a branch stands for, and checks the branch against it here, in double.
 */
final class DenseReference {
  private DenseReference() {}

  /** x · wᵀ in scalar loops: x [N, in], w [out, in]. */
  static double[][] matmulT(double[][] x, double[][] w) {
    double[][] y = new double[x.length][w.length];
    for (int n = 0; n < x.length; n++) {
      for (int o = 0; o < w.length; o++) {
        double acc = 0;
        for (int i = 0; i < w[0].length; i++) {
          acc += x[n][i] * w[o][i];
        }
        y[n][o] = acc;
      }
    }
    return y;
  }

  /** {@code n} rows of {@code in} standard normal values, drawn row by row. */
  static double[][] gaussian(Random rnd, int n, int in) {
    double[][] x = new double[n][in];
    for (double[] row : x) {
      for (int i = 0; i < in; i++) {
        row[i] = rnd.nextGaussian();
      }
    }
    return x;
  }

  /**
   * The frozen projection {@code wd} applied to {@code x} (no bias), plus module {@code m}'s branch
   * added by {@code fused}, must equal x · denseᵀ within 1e-12 relative (absolute below 1) in every
   * entry.
   *
   * @param x the inputs, [N, in]
   * @param wd the frozen weight, [out, in]
   * @param dense the weight the branch stands for, [out, in]
   */
  static void assertForwardEqualsDense(
      FusedLora fused, LoraWeights.Module m, double[][] x, double[][] wd, double[][] dense) {
    INDArray y = Nd4j.createFromArray(matmulT(x, wd)); // y = W x, no bias
    fused.forward(m.layer(), m.proj(), Nd4j.createFromArray(x), y);
    double[][] expected = matmulT(x, dense);
    for (int r = 0; r < x.length; r++) {
      for (int o = 0; o < expected[r].length; o++) {
        assertThat(y.getDouble(r, o))
            .as("%s row %d out %d", m.name(), r, o)
            .isCloseTo(expected[r][o], within(1e-12 * Math.max(1, Math.abs(expected[r][o]))));
      }
    }
  }
}
