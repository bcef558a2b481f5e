package io.loraspark.train.optim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Checks global-norm clipping against norms worked out by hand. */
class GradClipTest {

  /** [1, 2, 2] has norm 3 and [[0, 4]] norm 4, so the global norm is sqrt(9 + 16) = 5. */
  private static List<INDArray> grads(DataType dt) {
    return List.of(
        Nd4j.createFromArray(1.0, 2.0, 2.0).castTo(dt),
        Nd4j.createFromArray(new double[][] {{0.0, 4.0}}).castTo(dt));
  }

  private static double[] flat(List<INDArray> gs) {
    return Nd4j.toFlattened(gs.get(0).castTo(DataType.DOUBLE), gs.get(1).castTo(DataType.DOUBLE))
        .toDoubleVector();
  }

  @Test
  void globalNormIsTheL2NormOverAllTensors() {
    for (DataType dt : List.of(DataType.DOUBLE, DataType.FLOAT)) {
      assertThat(GradClip.globalNorm(grads(dt))).as("%s norm", dt).isEqualTo(5.0);
    }
    assertThat(GradClip.globalNorm(List.of())).as("no grads").isZero();
    INDArray huge = Nd4j.createFromArray(3e20f, 4e20f);
    assertThat(GradClip.globalNorm(List.of(huge)))
        .as("float grads whose squares overflow float")
        .isCloseTo(5e20, within(5e20 * 1e-7));
  }

  @Test
  void clipsToMaxNormLikePyTorch() {
    for (DataType dt : List.of(DataType.DOUBLE, DataType.FLOAT)) {
      List<INDArray> gs = grads(dt);
      double norm = GradClip.clipByGlobalNorm(gs, 1.0);
      assertThat(norm).as("%s returns the pre-clip norm", dt).isEqualTo(5.0);
      double coef = 1.0 / (5.0 + 1e-6); // max_norm / (total_norm + 1e-6)
      double[] want = {coef, 2 * coef, 2 * coef, 0, 4 * coef};
      double tol = dt == DataType.DOUBLE ? 1e-15 : 1e-7;
      double[] got = flat(gs);
      for (int j = 0; j < want.length; j++) {
        assertThat(got[j]).as("%s clipped element %d", dt, j).isCloseTo(want[j], within(tol));
      }
      assertThat(GradClip.globalNorm(gs))
          .as("%s norm after clipping", dt)
          .isCloseTo(5.0 / (5.0 + 1e-6), within(tol));
    }
  }

  /**
   * Float32 row-major grads take the vector kernels, column-major ones the ND4J ops: the norms
   * agree to double rounding (the sums run in different orders) and the clipped grads bit for bit;
   * widths of 67 run the kernels' vector bodies and scalar tails. {@code Kernels.zero} clears both
   * kinds.
   */
  @Test
  void vectorKernelsAgreeWithNd4jOps() {
    java.util.SplittableRandom rnd = new java.util.SplittableRandom(3);
    double[] values = rnd.doubles(5 * 67, -3, 3).toArray();
    INDArray c = Nd4j.createFromArray(values).castTo(DataType.FLOAT).reshape(5, 67);
    INDArray f = c.dup('f');
    double exact = 0;
    for (float v : c.data().asFloat()) {
      exact += (double) v * v;
    }
    double vectorNorm = GradClip.clipByGlobalNorm(List.of(c), 1.0);
    double nd4jNorm = GradClip.clipByGlobalNorm(List.of(f), 1.0);
    assertThat(vectorNorm).isCloseTo(Math.sqrt(exact), within(Math.sqrt(exact) * 1e-14));
    assertThat(vectorNorm).isCloseTo(nd4jNorm, within(nd4jNorm * 1e-14));
    float[] cv = c.dup('c').data().asFloat();
    float[] fv = f.dup('c').data().asFloat();
    assertThat(cv).as("clipped grads").containsExactly(fv);
    assertThat(GradClip.globalNorm(List.of(c))).isCloseTo(1.0, within(1e-6));
    io.loraspark.train.model.Kernels.zero(c);
    io.loraspark.train.model.Kernels.zero(f);
    assertThat(c.data().asFloat()).containsOnly(0f);
    assertThat(f.data().asFloat()).containsOnly(0f);
  }

  @Test
  void leavesGradsAloneUnderTheLimitOrWhenDisabled() {
    for (double maxNorm : new double[] {5.5, 100.0, 0.0, -1.0}) {
      List<INDArray> gs = grads(DataType.FLOAT);
      assertThat(GradClip.clipByGlobalNorm(gs, maxNorm))
          .as("norm with max_norm %s", maxNorm)
          .isEqualTo(5.0);
      assertThat(flat(gs))
          .as("grads with max_norm %s", maxNorm)
          .containsExactly(1.0, 2.0, 2.0, 0.0, 4.0);
    }
  }

  @Test
  void nonFiniteNormIsReturnedAndGradsAreLeftAlone() {
    List<INDArray> gs =
        List.of(Nd4j.createFromArray(1.0, Double.NaN), Nd4j.createFromArray(3.0, 4.0));
    assertThat(GradClip.clipByGlobalNorm(gs, 1.0)).as("NaN norm").isNaN();
    assertThat(gs.get(1).toDoubleVector()).as("finite grad untouched").containsExactly(3.0, 4.0);
    assertThatThrownBy(() -> GradClip.clipByGlobalNorm(gs, Double.NaN))
        .as("NaN max norm")
        .isInstanceOf(IllegalArgumentException.class);
  }
}
