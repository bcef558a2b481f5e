package io.loraspark.train.lora;

import static io.loraspark.train.lora.DenseReference.assertForwardEqualsDense;
import static io.loraspark.train.lora.DenseReference.gaussian;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The LoRA family's branches against the papers' equations: DoRA's forward against a dense W' built
 * with scalar loops, and the gradients of plain LoRA, LoRA-FA and DoRA in one fused step against
 * central finite differences, in double, on a random 2-layer GQA model with biases.
 */
class LoraFamilyGradientTest {
  @TempDir Path tmp;

  private ModelWeights base() {
    return FusedStep.randomBase(tmp);
  }

  /** A DoRA adapter whose B and magnitude are moved off their init, so ‖W + sBA‖ ≠ m ≠ ‖W‖. */
  static LoraWeights movedDora(ModelWeights base, LoraConfig c, long seed) {
    return LoraTestModels.moved(base, c, seed, LoraFamilyGradientTest::moveDora);
  }

  private static void moveDora(LoraWeights.Module m, Random rnd) {
    m.b().assign(Nd4j.randn(rnd.nextLong(), m.b().shape()).muli(0.3).castTo(m.b().dataType()));
    m.state(DoraState.class)
        .magnitude()
        .muli(Nd4j.rand(rnd.nextLong(), m.state(DoraState.class).magnitude().shape()).addi(0.5));
  }

  @Test
  void doraForwardEqualsDenseDecomposedWeight() {
    ModelWeights base = base();
    ModelConfig c = base.config();
    LoraConfig cfg =
        new LoraConfig(3, 5.0, 0.0, List.of(Projection.values()), false, LoraMethod.DORA);
    LoraWeights w = movedDora(base, cfg, 21);
    FusedLora fused = FusedLora.inference(w);
    Random rnd = new Random(5);
    for (LoraWeights.Module m : w.modules()) {
      double[][] wd =
          LoraWeights.frozenWeight(base, m.layer(), m.proj(), DataType.DOUBLE).toDoubleMatrix();
      double[][] expectedW =
          naiveDoraWeight(
              wd,
              m.b().toDoubleMatrix(),
              m.a().toDoubleMatrix(),
              m.state(DoraState.class).magnitude().toDoubleVector(),
              cfg.scaling());
      double[][] x = gaussian(rnd, 5, m.proj().inFeatures(c));
      assertForwardEqualsDense(fused, m, x, wd, expectedW);
    }
  }

  /** A PiSSA adapter whose A and B have moved away from their SVD init (A₀, B₀ stay). */
  static LoraWeights movedPissa(ModelWeights base, LoraConfig c, long seed) {
    return LoraTestModels.moved(base, c, seed, LoraFamilyGradientTest::movePissa);
  }

  private static void movePissa(LoraWeights.Module m, Random rnd) {
    m.a().addi(Nd4j.randn(rnd.nextLong(), m.a().shape()).muli(0.2).castTo(m.a().dataType()));
    m.b().addi(Nd4j.randn(rnd.nextLong(), m.b().shape()).muli(0.2).castTo(m.b().dataType()));
  }

  /** PiSSA's branch: W x − s·B₀·A₀·x + s·B·A·x, against that dense weight built in loops. */
  @Test
  void pissaForwardEqualsResidualPlusTrainedProduct() {
    ModelWeights base = base();
    LoraConfig cfg =
        new LoraConfig(3, 5.0, 0.0, List.of(Projection.values()), true, LoraMethod.PISSA);
    LoraWeights w = movedPissa(base, cfg, 22);
    FusedLora fused = FusedLora.inference(w);
    Random rnd = new Random(6);
    for (LoraWeights.Module m : w.modules()) {
      double[][] wd = m.state(PissaState.class).base().toDoubleMatrix();
      double[][] b = m.b().toDoubleMatrix();
      double[][] a = m.a().toDoubleMatrix();
      double[][] b0 = m.state(PissaState.class).b0().toDoubleMatrix();
      double[][] a0 = m.state(PissaState.class).a0().toDoubleMatrix();
      double[][] dense = new double[wd.length][wd[0].length];
      for (int o = 0; o < wd.length; o++) {
        for (int i = 0; i < wd[0].length; i++) {
          double v = wd[o][i];
          for (int r = 0; r < a.length; r++) {
            v += cfg.scaling() * (b[o][r] * a[r][i] - b0[o][r] * a0[r][i]);
          }
          dense[o][i] = v;
        }
      }
      assertForwardEqualsDense(fused, m, gaussian(rnd, 4, wd[0].length), wd, dense);
    }
  }

  /**
   * PiSSA's init against the eigen-decomposition of WᵀW (LAPACK syev, not the SVD the init uses):
   * A's rows are orthogonal with s·(A·Aᵀ) = diag(σ_1..σ_r), the top singular values σ_i = √λ_i;
   * W·Aᵀ = s·B·(A·Aᵀ) (B holds the matching left singular vectors); A₀, B₀ start equal to A, B.
   */
  @Test
  void pissaInitHoldsTopSingularTripletsOfW() {
    ModelWeights base = base();
    int r = 3;
    LoraConfig cfg =
        new LoraConfig(r, 6.0, 0.0, List.of(Projection.values()), false, LoraMethod.PISSA);
    LoraWeights w = LoraWeights.init(base, cfg, 5, DataType.DOUBLE);
    double s = cfg.scaling();
    for (LoraWeights.Module m : w.modules()) {
      INDArray wd = m.state(PissaState.class).base();
      INDArray gram = wd.transpose().mmul(wd); // [in, in]
      INDArray lambda =
          org.nd4j.linalg.eigen.Eigen.symmetricGeneralizedEigenvalues(gram.dup(), true);
      double[] sorted = lambda.toDoubleVector();
      Arrays.sort(sorted);
      INDArray aat = m.a().mmul(m.a().transpose()); // [r, r]
      for (int i = 0; i < r; i++) {
        double sigma = Math.sqrt(sorted[sorted.length - 1 - i]);
        for (int j = 0; j < r; j++) {
          double want = i == j ? sigma : 0.0;
          assertThat(s * aat.getDouble(i, j))
              .as("%s s·(A·Aᵀ)[%d,%d]", m.name(), i, j)
              .isCloseTo(want, within(1e-9 * Math.max(1, sigma)));
        }
      }
      INDArray lhs = wd.mmul(m.a().transpose()); // W Aᵀ, [out, r]
      INDArray rhs = m.b().mmul(aat).muli(s); // s B (A Aᵀ)
      assertThat(lhs.sub(rhs).amaxNumber().doubleValue())
          .as("%s W·Aᵀ = s·B·A·Aᵀ", m.name())
          .isLessThan(1e-9);
      assertThat(
              m.state(PissaState.class).a0().equals(m.a())
                  && m.state(PissaState.class).b0().equals(m.b()))
          .as("%s A₀, B₀ = init", m.name())
          .isTrue();
    }
  }

  @Test
  void doraMagnitudeStartsAtRowNormsOfW() {
    ModelWeights base = base();
    LoraWeights w =
        LoraWeights.init(
            base,
            new LoraConfig(2, 4, 0, List.of(Projection.Q, Projection.DOWN), false, LoraMethod.DORA),
            1,
            DataType.DOUBLE);
    for (LoraWeights.Module m : w.modules()) {
      double[][] wd = m.state(DoraState.class).base().toDoubleMatrix();
      for (int o = 0; o < wd.length; o++) {
        double sq = 0;
        for (double v : wd[o]) {
          sq += v * v;
        }
        assertThat(m.state(DoraState.class).magnitude().getDouble(o))
            .as("%s m[%d]", m.name(), o)
            .isCloseTo(Math.sqrt(sq), within(1e-12));
      }
      assertThat(m.state(DoraState.class).base())
          .as("W is the base model's own array")
          .isSameAs(LoraWeights.frozenWeight(base, m.layer(), m.proj(), DataType.DOUBLE));
    }
  }

  /**
   * Central differences give the true gradient; DoRA's analytic one treats ‖W + sBA‖ as a constant
   * (paper §4.3, PEFT's {@code weight_norm.detach()}), so for DoRA's A and B the test adds the
   * omitted norm path back: with c_j = ∂J/∂n_j / n_j = −dm_j·m_j / n_j², the true gradient is dA +
   * s·Bᵀ·diag(c)·(W + sBA) and dB + s·diag(c)·(W + sBA)·Aᵀ.
   */
  @Test
  void mixedFamilyGradientsMatchFiniteDifferences() {
    ModelWeights base = base();
    List<Projection> all = Arrays.asList(Projection.values());
    List<LoraWeights> adapters = new ArrayList<>();
    Random rnd = new Random(11);
    adapters.add(FusedStep.plainLora(base, all, 100, rnd));
    adapters.add(movedDora(base, new LoraConfig(2, 3, 0.3, all, false, LoraMethod.DORA), 101));
    adapters.add(
        FusedStep.randomB(
            LoraWeights.init(
                base,
                new LoraConfig(3, 6, 0.0, all, true, LoraMethod.LORA_FA),
                102,
                DataType.DOUBLE),
            rnd));
    adapters.add(movedDora(base, new LoraConfig(1, 2, 0.0, all, true, LoraMethod.DORA), 103));
    adapters.add(movedPissa(base, new LoraConfig(2, 4, 0.3, all, false, LoraMethod.PISSA), 104));
    FusedStep step = FusedStep.run(base, adapters, rnd, 6, 3, 500, 17);

    for (LoraWeights.Module m : adapters.get(2).modules()) {
      assertThat(m.gradA()).as("LoRA-FA %s has no dA", m.name()).isNull();
    }
    int checked =
        step.checkLayerZero(
            rnd,
            1e-6,
            (w, m) -> {
              INDArray[] expected = truePathCorrection(w, m);
              return (param, i) -> correction(expected, param, m, i);
            });
    // per layer-0 module: LoRA A,B; DoRA A,B,m; LoRA-FA B; DoRA A,B,m; PiSSA A,B — one entry each
    assertThat(checked).as("entries checked").isEqualTo(7 * (2 + 3 + 1 + 3 + 2));
  }

  /**
   * For a DoRA module, {ΔA, ΔB}: the gradient through the detached norm; null for other methods.
   */
  private static INDArray[] truePathCorrection(LoraWeights w, LoraWeights.Module m) {
    if (!(m.state() instanceof DoraState d)) {
      return null;
    }
    double s = w.config().scaling();
    INDArray adapted = d.base().add(m.b().mmul(m.a()).muli(s)); // W + sBA, [out, in]
    INDArray norm = adapted.norm2(1); // [out]
    INDArray cvec = d.gradMagnitude().mul(d.magnitude()).divi(norm).divi(norm).negi(); // [out]
    INDArray scaled = adapted.mulColumnVector(cvec.reshape(-1, 1)); // diag(c)(W + sBA)
    INDArray dA = m.b().transpose().mmul(scaled).muli(s); // [r, in]
    INDArray dB = scaled.mmul(m.a().transpose()).muli(s); // [out, r]
    return new INDArray[] {dA, dB};
  }

  private static double correction(
      INDArray[] c, LoraWeights.Trainable p, LoraWeights.Module m, long i) {
    if (c == null || p.value() == m.state(DoraState.class).magnitude()) {
      return 0;
    }
    return (p.value() == m.a() ? c[0] : c[1]).getDouble(i);
  }

  /** DoRA's W' = m ⊙ (W + s·B·A) / ‖W + s·B·A‖ (row norms), in scalar loops. */
  static double[][] naiveDoraWeight(
      double[][] w, double[][] b, double[][] a, double[] m, double s) {
    double[][] out = new double[w.length][w[0].length];
    for (int o = 0; o < w.length; o++) {
      double sq = 0;
      for (int i = 0; i < w[0].length; i++) {
        double v = w[o][i];
        for (int r = 0; r < a.length; r++) {
          v += s * b[o][r] * a[r][i];
        }
        out[o][i] = v;
        sq += v * v;
      }
      double norm = Math.sqrt(sq);
      for (int i = 0; i < w[0].length; i++) {
        out[o][i] *= m[o] / norm;
      }
    }
    return out;
  }
}
