package io.loraspark.train.optim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Checks AdamW against an independent double-precision transcription of {@code torch.optim.AdamW}'s
 * single-tensor update, against numbers worked out by hand, and checks LoRA+ groups and checkpoint
 * state.
 */
class AdamWTest {

  private static final long[][] SHAPES = {{3, 4}, {5}, {2, 3}};
  private static final double[] MULTIPLIERS = {1.0, 1.0, 4.0};

  /** Plain-Java AdamW for one flat parameter, written from the PyTorch docs' pseudo-code. */
  private static final class Reference {
    final double[] p;
    final double[] m;
    final double[] v;
    final double lrMultiplier;
    int t;

    Reference(double[] p, double lrMultiplier) {
      this.p = p.clone();
      this.m = new double[p.length];
      this.v = new double[p.length];
      this.lrMultiplier = lrMultiplier;
    }

    void step(AdamWConfig c, double lr, double[] g) {
      t++;
      double lrP = lr * lrMultiplier;
      for (int j = 0; j < p.length; j++) {
        p[j] *= 1 - lrP * c.weightDecay();
        m[j] = c.beta1() * m[j] + (1 - c.beta1()) * g[j];
        v[j] = c.beta2() * v[j] + (1 - c.beta2()) * g[j] * g[j];
        double mHat = m[j] / (1 - Math.pow(c.beta1(), t));
        double denom = Math.sqrt(v[j]) / Math.sqrt(1 - Math.pow(c.beta2(), t)) + c.eps();
        p[j] -= lrP * mHat / denom;
      }
    }
  }

  private static INDArray array(double[] values, DataType dt, long... shape) {
    return Nd4j.createFromArray(values).castTo(dt).reshape(shape);
  }

  private static double[] values(INDArray a) {
    return a.castTo(DataType.DOUBLE).dup('c').data().asDouble();
  }

  /** Values representable in {@code dt}, so the reference starts from what the optimizer sees. */
  private static double[] rounded(double[] v, DataType dt) {
    double[] out = v.clone();
    if (dt == DataType.FLOAT) {
      for (int j = 0; j < out.length; j++) {
        out[j] = (float) out[j];
      }
    }
    return out;
  }

  private static double[] random(SplittableRandom rnd, long n, double lo, double hi) {
    double[] out = new double[(int) n];
    for (int j = 0; j < out.length; j++) {
      out[j] = lo + (hi - lo) * rnd.nextDouble();
    }
    return out;
  }

  private static List<AdamW.Param> params(DataType dt, long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    List<AdamW.Param> out = new ArrayList<>();
    for (int i = 0; i < SHAPES.length; i++) {
      long n = SHAPES[i][0] * (SHAPES[i].length > 1 ? SHAPES[i][1] : 1);
      double[] p = random(rnd, n, 0.5, 1.5); // |p| >= 0.5 so a relative check is meaningful
      for (int j = 0; j < p.length; j++) {
        p[j] = rnd.nextBoolean() ? p[j] : -p[j];
      }
      out.add(
          new AdamW.Param(
              "p" + i, array(p, dt, SHAPES[i]), Nd4j.create(dt, SHAPES[i]), MULTIPLIERS[i]));
    }
    return out;
  }

  /**
   * Fills every grad with fresh U(-1, 1) values and returns them as the optimizer will see them.
   */
  private static List<double[]> randomGrads(List<AdamW.Param> ps, SplittableRandom rnd) {
    List<double[]> out = new ArrayList<>();
    for (AdamW.Param p : ps) {
      double[] g = rounded(random(rnd, p.grad().length(), -1, 1), p.grad().dataType());
      p.grad().assign(array(g, p.grad().dataType(), p.grad().shape()));
      out.add(g);
    }
    return out;
  }

  private static void matchesReference(AdamWConfig cfg, DataType dt, double tol) {
    List<AdamW.Param> ps = params(dt, 7);
    List<Reference> refs = new ArrayList<>();
    for (AdamW.Param p : ps) {
      refs.add(new Reference(values(p.value()), p.lrMultiplier()));
    }
    AdamW opt = new AdamW(cfg, ps);
    SplittableRandom rnd = new SplittableRandom(11);
    for (int step = 0; step < 10; step++) {
      double lr = cfg.lr() * (1 - 0.05 * step); // a decaying schedule
      List<double[]> grads = randomGrads(ps, rnd);
      opt.step(lr);
      for (int i = 0; i < ps.size(); i++) {
        refs.get(i).step(cfg, lr, grads.get(i));
      }
    }
    assertThat(opt.stepCount()).as("%s step count", dt).isEqualTo(10);
    Map<String, INDArray> state = opt.state();
    for (int i = 0; i < ps.size(); i++) {
      Reference ref = refs.get(i);
      double[] got = values(ps.get(i).value());
      double[] m = values(state.get("p" + i + ".exp_avg"));
      double[] v = values(state.get("p" + i + ".exp_avg_sq"));
      for (int j = 0; j < got.length; j++) {
        assertThat(Math.abs(got[j] - ref.p[j]) / Math.abs(ref.p[j]))
            .as("%s p%d[%d]: got %s, reference %s", dt, i, j, got[j], ref.p[j])
            .isLessThanOrEqualTo(tol);
        assertThat(Math.abs(m[j] - ref.m[j]) / Math.max(1, Math.abs(ref.m[j])))
            .as("%s p%d.exp_avg[%d]: got %s, reference %s", dt, i, j, m[j], ref.m[j])
            .isLessThanOrEqualTo(tol);
        assertThat(Math.abs(v[j] - ref.v[j]) / Math.max(1e-3, Math.abs(ref.v[j])))
            .as("%s p%d.exp_avg_sq[%d]: got %s, reference %s", dt, i, j, v[j], ref.v[j])
            .isLessThanOrEqualTo(tol);
      }
    }
  }

  @Test
  void doubleMatchesThePyTorchReferenceTo1e12() {
    matchesReference(AdamWConfig.of(1e-2).withWeightDecay(0.1), DataType.DOUBLE, 1e-12);
  }

  @Test
  void floatMatchesThePyTorchReferenceTo1e6() {
    matchesReference(AdamWConfig.of(1e-2).withWeightDecay(0.1), DataType.FLOAT, 1e-6);
  }

  /** beta1 below 0.5 takes the other branch of torch's lerp_ for the first moment. */
  /**
   * The float32 vector kernel (row-major arrays) and the ND4J ops (the same values in column-major
   * arrays, which the kernel does not take) must give the same bits over several steps, for both
   * forms of the first-moment update, with weight decay and LoRA+ multipliers; a width of 67 runs
   * the kernel's vector body and its scalar tail.
   */
  @Test
  void vectorKernelAndNd4jOpsGiveTheSameBits() {
    assertThat(io.loraspark.train.model.Kernels.VECTOR)
        .as("the tests run the vector kernels")
        .isTrue();
    for (double beta1 : new double[] {0.9, 0.3}) {
      AdamWConfig cfg = new AdamWConfig(3e-2, beta1, 0.999, 1e-8, 0.1, 4.0);
      SplittableRandom rnd = new SplittableRandom(5);
      long[] shape = {3, 67};
      double[] p0 = random(rnd, 3 * 67, -1, 1);
      INDArray pc = array(p0, DataType.FLOAT, shape);
      INDArray pf = pc.dup('f');
      INDArray gc = Nd4j.create(DataType.FLOAT, shape);
      INDArray gf = Nd4j.create(DataType.FLOAT, shape, 'f');
      AdamW vector = new AdamW(cfg, List.of(new AdamW.Param("w", pc, gc, 4.0)));
      AdamW nd4j = new AdamW(cfg, List.of(new AdamW.Param("w", pf, gf, 4.0)));
      for (int step = 0; step < 5; step++) {
        INDArray g = array(random(rnd, 3 * 67, -2, 2), DataType.FLOAT, shape);
        gc.assign(g);
        gf.assign(g);
        vector.step(cfg.lr());
        nd4j.step(cfg.lr());
      }
      assertThat(bits(pc)).as("β1 %s params", beta1).isEqualTo(bits(pf));
      assertThat(bits(vector.state().get("w.exp_avg")))
          .as("β1 %s exp_avg", beta1)
          .isEqualTo(bits(nd4j.state().get("w.exp_avg")));
      assertThat(bits(vector.state().get("w.exp_avg_sq")))
          .as("β1 %s exp_avg_sq", beta1)
          .isEqualTo(bits(nd4j.state().get("w.exp_avg_sq")));
      assertThat(bits(pc))
          .as("the params moved")
          .isNotEqualTo(bits(array(p0, DataType.FLOAT, shape)));
    }
  }

  private static int[] bits(INDArray a) {
    float[] f = a.dup('c').data().asFloat();
    int[] out = new int[f.length];
    for (int j = 0; j < f.length; j++) {
      out[j] = Float.floatToRawIntBits(f[j]);
    }
    return out;
  }

  @Test
  void smallBeta1MatchesThePyTorchReference() {
    AdamWConfig cfg = AdamWConfig.of(1e-2).withBetas(0.3, 0.9).withWeightDecay(0.2);
    matchesReference(cfg, DataType.DOUBLE, 1e-12);
    matchesReference(cfg, DataType.FLOAT, 1e-6);
  }

  /**
   * p = 1, g = 0.5 every step, lr = 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
   *
   * <p>Step 1: p = 1 · (1 - 0.1·0.01) = 0.999; m = 0.1·0.5 = 0.05; v = 0.001·0.25 = 0.00025; denom
   * = sqrt(0.00025)/sqrt(0.001) + 1e-8 = 0.5 + 1e-8; step size = 0.1/(1 - 0.9) = 1; p = 0.999 -
   * 0.05/(0.5 + 1e-8) = 0.899 + 2e-9.
   *
   * <p>Step 2: p = (0.899 + 2e-9) · 0.999 = 0.898101002; m = 0.9·0.05 + 0.1·0.5 = 0.095; v =
   * 0.999·0.00025 + 0.001·0.25 = 0.00049975; 1 - b2² = 0.001999, so v / 0.001999 = 0.25 and denom =
   * 0.5 + 1e-8; step size = 0.1/(1 - 0.81) = 0.1/0.19; p = 0.898101002 - (0.1/0.19) · 0.095/(0.5 +
   * 1e-8) = 0.898101002 - 0.1 · (1 - 2e-8) = 0.798101004.
   */
  @Test
  void scalarParamMatchesHandComputedPyTorchSteps() {
    for (DataType dt : List.of(DataType.DOUBLE, DataType.FLOAT)) {
      INDArray p = array(new double[] {1.0}, dt, 1);
      INDArray g = array(new double[] {0.5}, dt, 1);
      AdamW opt =
          new AdamW(
              AdamWConfig.of(0.1).withWeightDecay(0.01), List.of(new AdamW.Param("w", p, g, 1.0)));
      opt.step(0.1);
      assertThat(p.getDouble(0)).as("%s p after step 1", dt).isCloseTo(0.899, within(1e-6));
      opt.step(0.1);
      assertThat(p.getDouble(0)).as("%s p after step 2", dt).isCloseTo(0.798101004, within(1e-6));
      assertThat(opt.state().get("w.exp_avg").getDouble(0))
          .as("%s m after step 2", dt)
          .isCloseTo(0.095, within(1e-7));
      assertThat(opt.state().get("w.exp_avg_sq").getDouble(0))
          .as("%s v after step 2", dt)
          .isCloseTo(0.00049975, within(1e-9));
    }
  }

  private static LoraWeights tinyAdapter(DataType dt) {
    ModelConfig model =
        new ModelConfig(
            "LlamaForCausalLM",
            8,
            16,
            2,
            2,
            1,
            4,
            32,
            64,
            1e-6,
            10000,
            false,
            false,
            false,
            false,
            -1,
            -1);
    LoraConfig lora = new LoraConfig(2, 4, 0, List.of(Projection.Q, Projection.DOWN), false);
    return LoraWeights.init(model, lora, 3, dt);
  }

  @Test
  void loraParamsNamesBothMatricesAndPutsBInTheLrRatioGroup() {
    LoraWeights w = tinyAdapter(DataType.DOUBLE);
    List<AdamW.Param> ps = AdamW.loraParams(w, 16);
    assertThat(ps).as("two params per module").hasSize(2 * w.modules().size());
    List<LoraWeights.Module> modules = new ArrayList<>(w.modules());
    for (int i = 0; i < modules.size(); i++) {
      LoraWeights.Module m = modules.get(i);
      AdamW.Param a = ps.get(2 * i);
      AdamW.Param b = ps.get(2 * i + 1);
      assertThat(a.name()).as("A name").isEqualTo(m.name() + ".lora_A.weight");
      assertThat(b.name()).as("B name").isEqualTo(m.name() + ".lora_B.weight");
      assertThat(a.lrMultiplier()).as("A multiplier").isEqualTo(1.0);
      assertThat(b.lrMultiplier()).as("B multiplier").isEqualTo(16.0);
      assertThat(a.value()).as("A is the adapter's own array").isSameAs(m.a());
      assertThat(b.grad()).as("B grad is the adapter's accumulator").isSameAs(m.gradB());
    }
    assertThat(ps.get(0).name())
        .as("first param")
        .isEqualTo("model.layers.0.self_attn.q_proj.lora_A.weight");
  }

  @Test
  void loraPlusMovesBLrRatioTimesAsFarAsAOnTheFirstStep() {
    double ratio = 16;
    double lr = 1e-3;
    LoraWeights w = tinyAdapter(DataType.DOUBLE);
    AdamW opt = AdamW.forLora(AdamWConfig.of(lr).withLrRatio(ratio), w);
    List<INDArray> before = new ArrayList<>();
    for (AdamW.Param p : opt.params()) {
      before.add(p.value().dup());
      p.grad().assign(0.3);
    }
    opt.step(lr);
    double firstStep = lr * 0.3 / (0.3 + 1e-8); // m̂ / (sqrt(v̂) + eps) = g / (|g| + eps)
    for (int i = 0; i < opt.params().size(); i++) {
      AdamW.Param p = opt.params().get(i);
      double[] moved = values(before.get(i).sub(p.value()));
      double want = p.name().endsWith(".lora_B.weight") ? ratio * firstStep : firstStep;
      for (int j = 0; j < moved.length; j++) {
        assertThat(moved[j])
            .as("%s[%d] first-step displacement", p.name(), j)
            .isCloseTo(want, within(want * 1e-9));
      }
    }
  }

  /** Runs {@code steps} steps with deterministic grads and lrs depending on the global step. */
  private static void run(AdamW opt, int from, int steps) {
    for (int s = from; s < from + steps; s++) {
      randomGrads(opt.params(), new SplittableRandom(100 + s));
      opt.step(1e-2 / (1 + s));
    }
  }

  private static List<AdamW.Param> copies(List<AdamW.Param> ps) {
    List<AdamW.Param> out = new ArrayList<>();
    for (AdamW.Param p : ps) {
      out.add(new AdamW.Param(p.name(), p.value().dup(), p.grad().dup(), p.lrMultiplier()));
    }
    return out;
  }

  @Test
  void savedStateResumesBitIdentically() {
    for (DataType dt : List.of(DataType.DOUBLE, DataType.FLOAT)) {
      AdamWConfig cfg = AdamWConfig.of(1e-2).withWeightDecay(0.05);
      AdamW original = new AdamW(cfg, params(dt, 5));
      run(original, 0, 4);
      Map<String, INDArray> saved = original.state();
      int savedStep = original.stepCount();
      AdamW resumed = new AdamW(cfg, copies(original.params()));
      run(original, 4, 3);
      resumed.loadState(saved, savedStep);
      assertThat(resumed.stepCount()).as("%s restored step count", dt).isEqualTo(4);
      run(resumed, 4, 3);
      for (int i = 0; i < SHAPES.length; i++) {
        assertThat(values(resumed.params().get(i).value()))
            .as("%s p%d after resume", dt, i)
            .containsExactly(values(original.params().get(i).value()));
      }
      Map<String, INDArray> a = original.state();
      Map<String, INDArray> b = resumed.state();
      assertThat(b.keySet()).as("%s state keys", dt).containsExactlyElementsOf(a.keySet());
      for (String key : a.keySet()) {
        assertThat(values(b.get(key))).as("%s %s", dt, key).containsExactly(values(a.get(key)));
      }
    }
  }

  @Test
  void loadStateRejectsMissingUnexpectedAndMisshapenKeysWithoutChangingAnything() {
    AdamW opt = new AdamW(AdamWConfig.of(1e-2), params(DataType.DOUBLE, 5));
    run(opt, 0, 2);
    Map<String, INDArray> good = opt.state();

    Map<String, INDArray> missing = new HashMap<>(good);
    missing.remove("p1.exp_avg_sq");
    assertThatThrownBy(() -> opt.loadState(missing, 2))
        .as("missing key")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("p1.exp_avg_sq")
        .hasMessageContaining("missing");

    Map<String, INDArray> misshapen = new HashMap<>(good);
    misshapen.put("p0.exp_avg", Nd4j.zeros(DataType.DOUBLE, 4, 3));
    assertThatThrownBy(() -> opt.loadState(misshapen, 2))
        .as("wrong shape")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("p0.exp_avg")
        .hasMessageContaining("[4, 3]")
        .hasMessageContaining("[3, 4]");

    Map<String, INDArray> extra = new HashMap<>(good);
    extra.put("p9.exp_avg", Nd4j.zeros(DataType.DOUBLE, 1));
    assertThatThrownBy(() -> opt.loadState(extra, 2))
        .as("unexpected key")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("p9.exp_avg");

    assertThatThrownBy(() -> opt.loadState(good, -1))
        .as("negative step count")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("-1");

    assertThat(opt.stepCount()).as("step count after rejected loads").isEqualTo(2);
    for (String key : good.keySet()) {
      assertThat(values(opt.state().get(key)))
          .as("%s after rejected loads", key)
          .containsExactly(values(good.get(key)));
    }
  }

  @Test
  void rejectsInvalidParamsAndLearningRates() {
    INDArray p = Nd4j.zeros(DataType.FLOAT, 2, 3);
    assertThatThrownBy(() -> new AdamW.Param("x", p, Nd4j.zeros(DataType.FLOAT, 3, 2), 1.0))
        .as("grad shape")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("param x");
    assertThatThrownBy(() -> new AdamW.Param("x", p, Nd4j.zeros(DataType.DOUBLE, 2, 3), 1.0))
        .as("grad dtype")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("DOUBLE");
    assertThatThrownBy(() -> new AdamW.Param("x", p, p.dup(), 0))
        .as("zero multiplier")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("multiplier must be > 0");
    AdamW.Param ok = new AdamW.Param("x", p, p.dup(), 1);
    assertThatThrownBy(() -> new AdamW(AdamWConfig.of(1e-3), List.of(ok, ok)))
        .as("duplicate names")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("duplicate param name x");
    assertThatThrownBy(() -> new AdamW(AdamWConfig.of(1e-3), List.of()))
        .as("no params")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("empty parameter list");
    AdamW opt = new AdamW(AdamWConfig.of(1e-3), List.of(ok));
    assertThatThrownBy(() -> opt.step(-1e-3))
        .as("negative lr")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("lr must be >= 0");
    assertThat(opt.stepCount()).as("a rejected step is not counted").isZero();
  }

  @Test
  void configHasPyTorchDefaultsAndValidates() {
    AdamWConfig c = AdamWConfig.of(2e-4);
    assertThat(c).as("defaults").isEqualTo(new AdamWConfig(2e-4, 0.9, 0.999, 1e-8, 0.0, 1.0));
    assertThat(c.withBetas(0.8, 0.99).withEps(1e-6).withWeightDecay(0.1).withLrRatio(16))
        .as("copies")
        .isEqualTo(new AdamWConfig(2e-4, 0.8, 0.99, 1e-6, 0.1, 16));
    assertThatThrownBy(() -> c.withLrRatio(-1))
        .as("lr ratio")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("lr_ratio must be > 0 but was -1.0");
    assertThatThrownBy(() -> c.withLr(0))
        .as("lr")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("lr must be > 0 but was 0.0");
    assertThatThrownBy(() -> c.withBetas(1.0, 0.999))
        .as("beta1")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("beta1 must be in [0, 1) but was 1.0");
    assertThatThrownBy(() -> c.withBetas(0.9, -0.1))
        .as("beta2")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("beta2 must be in [0, 1) but was -0.1");
    assertThatThrownBy(() -> c.withEps(0))
        .as("eps")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("eps must be > 0 but was 0.0");
    assertThatThrownBy(() -> c.withWeightDecay(-0.01))
        .as("weight decay")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("weight_decay must be >= 0 but was -0.01");
    assertThatThrownBy(() -> c.withLr(Double.NaN))
        .as("NaN lr")
        .isInstanceOf(IllegalArgumentException.class);
  }
}
