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
