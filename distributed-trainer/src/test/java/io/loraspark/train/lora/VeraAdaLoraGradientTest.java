package io.loraspark.train.lora;

import static io.loraspark.train.lora.DenseReference.assertForwardEqualsDense;
import static io.loraspark.train.lora.DenseReference.gaussian;
import static io.loraspark.train.lora.DenseReference.matmulT;
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
 * VeRA's and AdaLoRA's branches against the papers' equations in scalar loops, their gradients in
 * one fused step with plain LoRA against central finite differences (in double, on a random 2-layer
 * GQA model with biases), AdaLoRA's orthogonality-regulariser gradient against finite differences
 * of PEFT's regulariser, and the initialisations PEFT uses.
 */
class VeraAdaLoraGradientTest {
  @TempDir Path tmp;

  static final List<Projection> ALL = Arrays.asList(Projection.values());

  private ModelWeights base() {
    return FusedStep.randomBase(tmp);
  }

  /** A VeRA adapter whose λ_d and λ_b are moved off their init (λ_b = 0 would hide the branch). */
  static LoraWeights movedVera(ModelWeights base, LoraConfig c, long seed) {
    return LoraTestModels.moved(base, c, seed, VeraAdaLoraGradientTest::moveVera);
  }

  private static void moveVera(LoraWeights.Module m, Random rnd) {
    m.state(VeraState.class).lambdaD().addi(randn(rnd, m.state(VeraState.class).lambdaD(), 0.5));
    m.state(VeraState.class).lambdaB().assign(randn(rnd, m.state(VeraState.class).lambdaB(), 0.5));
  }

  /** An AdaLoRA adapter with nonzero singular values E (PEFT starts them at zero). */
  static LoraWeights movedAdaLora(ModelWeights base, LoraConfig c, long seed) {
    return LoraTestModels.moved(base, c, seed, VeraAdaLoraGradientTest::moveAdaLora);
  }

  private static void moveAdaLora(LoraWeights.Module m, Random rnd) {
    m.state(AdaLoraState.class).e().assign(randn(rnd, m.state(AdaLoraState.class).e(), 2.0));
    m.a().addi(randn(rnd, m.a(), 0.2));
    m.b().addi(randn(rnd, m.b(), 0.2));
  }

  static INDArray randn(Random rnd, INDArray like, double std) {
    return Nd4j.randn(rnd.nextLong(), like.shape()).muli(std).castTo(like.dataType());
  }

  /** Δy = λ_b ⊙ (B[:out,:] (λ_d ⊙ (A[:, :in] x))), with A, B read from the shared full matrices. */
  @Test
  void veraForwardEqualsPaperEquationOnSharedMatrices() {
    ModelWeights base = base();
    LoraConfig cfg = new LoraConfig(5, 16, 0.0, ALL, false, LoraMethod.VERA);
    LoraWeights w = movedVera(base, cfg, 21);
    double[][] fullA = w.shared().get("vera_A").toDoubleMatrix(); // [r, in_max]
    double[][] fullB = w.shared().get("vera_B").toDoubleMatrix(); // [out_max, r]
    ModelConfig c = base.config();
    assertThat(fullA[0].length).as("in_max").isEqualTo(c.intermediateSize());
    assertThat(fullB.length)
        .as("out_max")
        .isEqualTo(Math.max(c.intermediateSize(), Math.max(c.qDim(), c.hiddenSize())));
    FusedLora fused = FusedLora.inference(w);
    Random rnd = new Random(5);
    for (LoraWeights.Module m : w.modules()) {
      double[][] wd = weight(base, m);
      int out = wd.length;
      int in = wd[0].length;
      double[] ld = m.state(VeraState.class).lambdaD().toDoubleVector();
      double[] lb = m.state(VeraState.class).lambdaB().toDoubleVector();
      double[][] x = gaussian(rnd, 4, in);
      INDArray y = Nd4j.createFromArray(matmulT(x, wd));
      fused.forward(m.layer(), m.proj(), Nd4j.createFromArray(x), y);
      for (int n = 0; n < x.length; n++) {
        for (int o = 0; o < out; o++) {
          double acc = 0;
          for (int r = 0; r < ld.length; r++) {
            double ax = 0;
            for (int i = 0; i < in; i++) {
              ax += fullA[r][i] * x[n][i];
            }
            acc += fullB[o][r] * ld[r] * ax;
          }
          double want = lb[o] * acc;
          for (int i = 0; i < in; i++) {
            want += wd[o][i] * x[n][i];
          }
          assertThat(y.getDouble(n, o))
              .as("%s row %d out %d", m.name(), n, o)
              .isCloseTo(want, within(1e-12 * Math.max(1, Math.abs(want))));
        }
      }
    }
  }

  /** PEFT's init: λ_d = d_initial 0.1, λ_b = 0, shared A, B Kaiming-uniform with gain √2. */
  @Test
  void veraInitIsPeftsAndTheProjectionsAreShared() {
    ModelWeights base = base();
    int r = 6;
    LoraWeights w =
        LoraWeights.init(
            base, new LoraConfig(r, 1, 0, ALL, false, LoraMethod.VERA), 9, DataType.DOUBLE);
    INDArray a = w.shared().get("vera_A");
    INDArray b = w.shared().get("vera_B");
    double boundA = Math.sqrt(6.0 / a.columns());
    double boundB = Math.sqrt(6.0 / r);
    assertThat(a.amaxNumber().doubleValue())
        .isLessThanOrEqualTo(boundA)
        .isGreaterThan(0.9 * boundA);
    assertThat(b.amaxNumber().doubleValue())
        .isLessThanOrEqualTo(boundB)
        .isGreaterThan(0.9 * boundB);
    assertThat(Math.abs(a.meanNumber().doubleValue())).as("U(-b, b) mean").isLessThan(0.1 * boundA);
    for (LoraWeights.Module m : w.modules()) {
      assertThat(m.state(VeraState.class).lambdaD().toDoubleVector()).containsOnly(0.1);
      assertThat(m.state(VeraState.class).lambdaB().toDoubleVector()).containsOnly(0.0);
      assertThat(m.gradA()).isNull();
      assertThat(m.gradB()).isNull();
    }
    a.putScalar(0, 1, 42.0);
    b.putScalar(1, 0, 43.0);
    for (LoraWeights.Module m : w.modules()) {
      assertThat(m.a().getDouble(0, 1)).as("%s A is a view of vera_A", m.name()).isEqualTo(42.0);
      assertThat(m.b().getDouble(1, 0)).as("%s B is a view of vera_B", m.name()).isEqualTo(43.0);
    }
    long expected = 0;
    for (LoraWeights.Module m : w.modules()) {
      expected += r + m.b().rows();
    }
    assertThat(w.parameterCount()).as("Σ (r + out)").isEqualTo(expected);
  }

  /** y += alpha / (init_r + 1e-5) · B diag(E) A x, init_r = ⌈1.5 · target_r⌉. */
  @Test
  void adaLoraForwardEqualsSvdFormWithPeftScaling() {
    ModelWeights base = base();
    LoraConfig cfg = new LoraConfig(2, 6, 0.0, ALL, false, LoraMethod.ADALORA);
    LoraWeights w = movedAdaLora(base, cfg, 22);
    double s = 6 / (3 + 1e-5); // init_r = ceil(1.5 * 2) = 3
    assertThat(cfg.scaling()).isEqualTo(s);
    FusedLora fused = FusedLora.inference(w);
    Random rnd = new Random(6);
    for (LoraWeights.Module m : w.modules()) {
      double[][] wd = weight(base, m);
      double[][] a = m.a().toDoubleMatrix();
      double[][] b = m.b().toDoubleMatrix();
      double[][] e = m.state(AdaLoraState.class).e().toDoubleMatrix();
      assertThat(a.length).as("init_r rows").isEqualTo(3);
      double[][] dense = new double[wd.length][wd[0].length];
      for (int o = 0; o < wd.length; o++) {
        for (int i = 0; i < wd[0].length; i++) {
          double v = wd[o][i];
          for (int r = 0; r < a.length; r++) {
            v += s * b[o][r] * e[r][0] * a[r][i];
          }
          dense[o][i] = v;
        }
      }
      assertForwardEqualsDense(fused, m, gaussian(rnd, 4, wd[0].length), wd, dense);
    }
  }

  /** PEFT's reset_lora_parameters: E = 0, A and B ~ N(0, 0.02²); Σ init_r (in + out + 1) train. */
  @Test
  void adaLoraInitIsPefts() {
    ModelWeights base = base();
    LoraWeights w =
        LoraWeights.init(
            base, new LoraConfig(4, 8, 0, ALL, false, LoraMethod.ADALORA), 3, DataType.DOUBLE);
    List<Double> all = new ArrayList<>();
    long params = 0;
    for (LoraWeights.Module m : w.modules()) {
      assertThat(m.a().rows()).as("init_r = ceil(1.5 * 4)").isEqualTo(6);
      assertThat(m.state(AdaLoraState.class).e().shape()).containsExactly(6, 1);
      assertThat(m.state(AdaLoraState.class).e().toDoubleVector()).containsOnly(0.0);
      Arrays.stream(m.a().dup().data().asDouble()).forEach(all::add);
      Arrays.stream(m.b().dup().data().asDouble()).forEach(all::add);
      params += 6 * (m.a().columns() + m.b().rows() + 1);
    }
    double mean = all.stream().mapToDouble(d -> d).average().orElseThrow();
    double sd =
        Math.sqrt(all.stream().mapToDouble(d -> (d - mean) * (d - mean)).sum() / all.size());
    assertThat(mean).as("mean of A, B").isCloseTo(0, within(0.002));
    assertThat(sd).as("std of A, B over %d values", all.size()).isCloseTo(0.02, within(0.001));
    assertThat(w.parameterCount()).isEqualTo(params);
    assertThat(
            LoraWeights.init(base, w.config(), 3, DataType.DOUBLE).modules().iterator().next().a())
        .as("same seed, same init")
        .isEqualTo(w.modules().iterator().next().a());
  }

  /**
   * PEFT's regulariser R = 0.5 / n · Σ ‖P Pᵀ − I‖_F over every A (A Aᵀ) and B (Bᵀ B), n = 2 ·
   * modules, computed here in loops; the gradient beforeOptimizerStep adds must be its central
   * difference.
   */
  @Test
  void adaLoraOrthogonalityGradientMatchesFiniteDifferences() {
    ModelWeights base = base();
    LoraWeights w =
        movedAdaLora(
            base,
            new LoraConfig(
                2, 4, 0, List.of(Projection.Q, Projection.DOWN), false, LoraMethod.ADALORA),
            31);
    w.zeroGrad();
    w.variant().beforeOptimizerStep(w, 0, 10);
    Random rnd = new Random(2);
    double eps = 1e-6;
    int checked = 0;
    for (LoraWeights.Module m : w.modules()) {
      for (INDArray[] pg :
          List.of(new INDArray[] {m.a(), m.gradA()}, new INDArray[] {m.b(), m.gradB()})) {
        for (int t = 0; t < 3; t++) {
          long i = rnd.nextInt((int) pg[0].length());
          double orig = pg[0].getDouble(i);
          pg[0].putScalar(i, orig + eps);
          double plus = orthReg(w);
          pg[0].putScalar(i, orig - eps);
          double minus = orthReg(w);
          pg[0].putScalar(i, orig);
          double numeric = (plus - minus) / (2 * eps);
          assertThat(pg[1].getDouble(i))
              .as("%s [%d]", m.name(), i)
              .isCloseTo(numeric, within(1e-7 * Math.max(1, Math.abs(numeric))));
          checked++;
        }
      }
      assertThat(m.state(AdaLoraState.class).gradE().toDoubleVector())
          .as("E is not regularised")
          .containsOnly(0.0);
    }
    assertThat(checked).isEqualTo(2 * 2 * 2 * 3);
  }

  private static double orthReg(LoraWeights w) {
    double sum = 0;
    int n = 0;
    for (LoraWeights.Module m : w.modules()) {
      sum += frobDevFromIdentity(m.a().toDoubleMatrix(), true);
      sum += frobDevFromIdentity(m.b().toDoubleMatrix(), false);
      n += 2;
    }
    return 0.5 * sum / n;
  }

  /** ‖P Pᵀ − I‖_F (rows) or ‖Pᵀ P − I‖_F (columns) in loops. */
  private static double frobDevFromIdentity(double[][] p, boolean rows) {
    int k = rows ? p.length : p[0].length;
    int len = rows ? p[0].length : p.length;
    double sq = 0;
    for (int i = 0; i < k; i++) {
      for (int j = 0; j < k; j++) {
        double dot = 0;
        for (int t = 0; t < len; t++) {
          dot += rows ? p[i][t] * p[j][t] : p[t][i] * p[t][j];
        }
        double d = dot - (i == j ? 1 : 0);
        sq += d * d;
      }
    }
    return Math.sqrt(sq);
  }

  /**
   * Plain LoRA (dropout 0.3), VeRA (dropout 0.3, so its input gradient goes through the mask) and
   * AdaLoRA (no dropout) in one fused step: one random entry of every layer-0 trainable, analytic
   * gradient against a central difference of Σ_k mean loss_k.
   */
  @Test
  void mixedVeraAdaLoraGradientsMatchFiniteDifferences() {
    ModelWeights base = base();
    Random rnd = new Random(11);
    List<LoraWeights> adapters = new ArrayList<>();
    adapters.add(FusedStep.plainLora(base, ALL, 100, rnd));
    adapters.add(movedVera(base, new LoraConfig(4, 8, 0.3, ALL, false, LoraMethod.VERA), 101));
    adapters.add(
        movedAdaLora(base, new LoraConfig(2, 3, 0.0, ALL, false, LoraMethod.ADALORA), 102));
    FusedStep step = FusedStep.run(base, adapters, rnd, 6, 3, 500, 17);
    int checked = step.checkLayerZero(rnd, 1e-6, FusedStep.NO_CORRECTION);
    // per layer-0 module: LoRA A,B; VeRA λ_d,λ_b; AdaLoRA A,B,E — one entry each
    assertThat(checked).as("entries checked").isEqualTo(7 * (2 + 2 + 3));
  }

  private static double[][] weight(ModelWeights base, LoraWeights.Module m) {
    return LoraWeights.frozenWeight(base, m.layer(), m.proj(), DataType.DOUBLE).toDoubleMatrix();
  }
}
