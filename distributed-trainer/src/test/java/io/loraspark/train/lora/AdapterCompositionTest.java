package io.loraspark.train.lora;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * {@link LoraForm}, {@link LoraFormWriter} and {@link AdapterComposition} against plain-Java
 * references (loops over double arrays): each method's LoRA form against its own {@code merged}
 * weight, {@code cat} and {@code svd} against the dense weighted ΔW sum, and {@code linear}, {@code
 * ties}, {@code dare_*} against a naive port of PEFT's {@code merge_utils}.
 */
class AdapterCompositionTest {
  static final ModelConfig MODEL = LoraTestModels.smallLlama();
  static final double EXACT = 1e-10; // double against double
  static final double STORED = 1e-5; // after rounding to F32 on save

  @TempDir Path dir;

  /** An adapter with every trained tensor moved off its init, so each factor matters. */
  static LoraWeights moved(LoraConfig c, long seed) {
    LoraWeights w = LoraWeights.init(MODEL, c, seed, DataType.FLOAT);
    Random rnd = new Random(seed);
    for (LoraWeights.Module m : w.modules()) {
      List<INDArray> moving = new ArrayList<>();
      if (c.method() != LoraMethod.VERA) { // VeRA's A and B are frozen shared slices
        moving.add(m.a());
        moving.add(m.b());
      }
      if (m.state() instanceof VeraState v) {
        moving.add(v.lambdaD());
        moving.add(v.lambdaB());
      }
      if (m.state() instanceof AdaLoraState e) {
        moving.add(e.e());
      }
      for (INDArray t : moving) {
        float[] v = new float[(int) t.length()];
        for (int i = 0; i < v.length; i++) {
          v[i] = (float) (0.2 * rnd.nextGaussian());
        }
        t.addi(Nd4j.create(v, t.shape(), 'c'));
      }
    }
    return w;
  }

  static LoraConfig config(LoraMethod method, int rank, boolean rsLora, Projection... targets) {
    return new LoraConfig(rank, 3.0 * rank, 0, List.of(targets), rsLora, method);
  }

  @ParameterizedTest
  @EnumSource(
      value = LoraMethod.class,
      names = {"LORA", "LORA_FA", "VERA", "ADALORA"})
  void loraFormIsTheMethodsOwnUpdate(LoraMethod method) {
    for (boolean rsLora : new boolean[] {false, true}) {
      LoraWeights w = moved(config(method, 3, rsLora, Projection.values()), 7);
      LoraForm form = LoraForm.of("a", w);
      for (LoraWeights.Module m : w.modules()) {
        INDArray base = Nd4j.rand(DataType.DOUBLE, m.b().rows(), m.a().columns());
        INDArray want = w.variant().merged(m, w.scaling(m), base).sub(base); // [out, in]
        INDArray got = form.modules().get(m.name()).delta();
        assertThat(relative(got, want))
            .as(
                "%s rsLora=%s %s: LoRA form vs the method's merged update",
                method, rsLora, m.name())
            .isLessThan(EXACT);
        assertThat(want.norm2Number().doubleValue()).as("update is nonzero").isGreaterThan(0);
      }
    }
  }

  @Test
  void refusesDoraPissaAndDenseDeltaLoraNamingAdapterAndMethod() {
    for (LoraMethod m : new LoraMethod[] {LoraMethod.DORA, LoraMethod.PISSA}) {
      assertThatThrownBy(() -> LoraForm.requireAdditive("adapters/x", m))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("adapter 'adapters/x' is " + m.key());
    }
    LoraConfig deltaConfig = config(LoraMethod.DELTA_LORA, 2, false, Projection.Q);
    LoraWeights lowRank = LoraWeights.init(MODEL, deltaConfig, 1, DataType.FLOAT);
    assertThat(LoraForm.of("today's delta-lora", lowRank).modules())
        .as("a Delta-LoRA trained today is low rank: it composes")
        .isNotEmpty();
    LoraWeights delta = // as saved by an earlier version, with a dense ΔW per projection
        LoraWeights.init(
            MODEL, deltaConfig.withDeltaLora(DeltaLoraParams.DENSE), 1, DataType.FLOAT);
    assertThatThrownBy(() -> LoraForm.of("d", delta))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("adapter 'd' is delta-lora with a dense ΔW")
        .hasMessageNotContaining("\n");
  }

  /** Three inputs on overlapping modules, ranks 2/3/2, one VeRA, one rsLoRA. */
  static List<LoraForm> inputs() {
    return List.of(
        LoraForm.of("a", moved(config(LoraMethod.LORA, 2, false, Projection.Q, Projection.V), 1)),
        LoraForm.of(
            "b",
            moved(
                config(LoraMethod.ADALORA, 2, true, Projection.Q, Projection.O, Projection.DOWN),
                2)),
        LoraForm.of("c", moved(config(LoraMethod.VERA, 2, false, Projection.V, Projection.UP), 3)));
  }

  static final double[] WEIGHTS = {0.7, -1.3, 0.4};

  @Test
  void catWritesTheExactWeightedSumWithOneRankAndNoRankPattern() throws Exception {
    List<LoraForm> forms = inputs();
    int r = LoraFormWriter.write(dir, forms, WEIGHTS, "base");
    int sum = forms.stream().mapToInt(LoraForm::maxRank).sum();
    assertThat(r).as("r = Σ r_i").isEqualTo(sum);
    String json = Files.readString(dir.resolve(PeftAdapter.CONFIG_FILE));
    assertThat(json)
        .as("config")
        .contains("\"peft_type\": \"LORA\"")
        .contains("\"r\": " + sum)
        .contains("\"lora_alpha\": " + sum)
        .contains("\"use_rslora\": false");
    assertThat(json)
        .as("no rank or alpha pattern")
        .doesNotContainPattern("\"(rank|alpha)_pattern\": \\{\\s*\"");
    LoraWeights back = PeftAdapter.load(dir, MODEL, DataType.FLOAT);
    assertThat(back.config().selection().hasPatterns()).as("read back without patterns").isFalse();
    assertThat(back.config().scaling()).as("scaling").isEqualTo(1.0);
    assertThat(back.config().targets())
        .as("union of targets")
        .containsExactly(Projection.Q, Projection.V, Projection.O, Projection.UP, Projection.DOWN);
    for (LoraWeights.Module m : back.modules()) {
      double[][] want = naiveWeightedSum(forms, WEIGHTS, m.name());
      INDArray written = m.b().castTo(DataType.DOUBLE).mmul(m.a().castTo(DataType.DOUBLE));
      assertThat(relative(written, want))
          .as("%s: written B·A vs Σ w_i s_i B_i A_i", m.name())
          .isLessThan(STORED);
    }
  }

  @Test
  void svdAtFullRankEqualsCat() {
    List<LoraForm> forms = inputs();
    int full = forms.stream().mapToInt(LoraForm::maxRank).sum();
    LoraForm cat = compose(forms, AdapterComposition.Method.CAT, 0, Double.NaN).form();
    AdapterComposition.Result svd = compose(forms, AdapterComposition.Method.SVD, full, Double.NaN);
    for (String module : cat.modules().keySet()) {
      assertThat(
              relative(svd.form().modules().get(module).delta(), cat.modules().get(module).delta()))
          .as("%s: svd at rank %d vs cat", module, full)
          .isLessThan(1e-9);
      assertThat(svd.relativeErrors().get(module))
          .as("%s: reported error", module)
          .isLessThan(1e-7);
    }
  }

  @Test
  void svdBelowFullRankReportsTheRelativeFrobeniusErrorOfItsTruncation() {
    List<LoraForm> forms = inputs();
    AdapterComposition.Result svd = compose(forms, AdapterComposition.Method.SVD, 2, Double.NaN);
    assertThat(svd.form().maxRank()).as("rank").isEqualTo(2);
    for (Map.Entry<String, LoraForm.Factors> e : svd.form().modules().entrySet()) {
      double[][] want = naiveWeightedSum(forms, WEIGHTS, e.getKey());
      double[][] got = e.getValue().delta().toDoubleMatrix();
      double diff = 0;
      double norm = 0;
      for (int i = 0; i < want.length; i++) {
        for (int j = 0; j < want[0].length; j++) {
          diff += (want[i][j] - got[i][j]) * (want[i][j] - got[i][j]);
          norm += want[i][j] * want[i][j];
        }
      }
      double naive = Math.sqrt(diff / norm);
      assertThat(svd.relativeErrors().get(e.getKey()))
          .as("%s: reported vs ‖ΔW − ΔW_2‖/‖ΔW‖ = %s", e.getKey(), naive)
          .isCloseTo(naive, org.assertj.core.api.Assertions.within(1e-9));
    }
    assertThat(svd.relativeErrors().values())
        .as("a module of rank 4 loses something at rank 2")
        .anyMatch(err -> err > 1e-3);
  }

  @Test
  void linearIsPeftsWeightedSumOfTheAsAndOfTheBs() {
    List<LoraForm> forms = equalRankInputs();
    double[] weights = {0.7, -1.3, 0.4}; // a negative weight: its sign goes on A only
    LoraForm out = compose(forms, weights, AdapterComposition.Method.LINEAR, Double.NaN, 0).form();
    for (Map.Entry<String, LoraForm.Factors> e : out.modules().entrySet()) {
      for (boolean factorA : new boolean[] {true, false}) {
        List<double[]> tasks = new ArrayList<>();
        List<Double> w = new ArrayList<>();
        collect(forms, weights, e.getKey(), factorA, tasks, w, new ArrayList<>());
        double[] want = new double[tasks.get(0).length];
        for (int i = 0; i < tasks.size(); i++) {
          for (int j = 0; j < want.length; j++) {
            want[j] += w.get(i) * tasks.get(i)[j];
          }
        }
        assertClose(flat(e.getValue(), factorA), want, e.getKey() + (factorA ? " A" : " B"));
      }
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = AdapterComposition.Method.class,
      names = {"TIES", "DARE_LINEAR", "DARE_TIES"})
  void tiesAndDareEqualANaivePortOfPeftsMergeUtils(AdapterComposition.Method method) {
    List<LoraForm> forms = equalRankInputs();
    double[] weights = {0.7, -1.3, 0.4};
    double density = 0.4;
    long seed = 11;
    LoraForm out = compose(forms, weights, method, density, seed).form();
    for (Map.Entry<String, LoraForm.Factors> e : out.modules().entrySet()) {
      for (boolean factorA : new boolean[] {true, false}) {
        List<double[]> tasks = new ArrayList<>();
        List<Double> w = new ArrayList<>();
        List<Integer> inputs = new ArrayList<>();
        collect(forms, weights, e.getKey(), factorA, tasks, w, inputs);
        for (int i = 0; i < tasks.size(); i++) {
          tasks.set(
              i,
              method == AdapterComposition.Method.TIES
                  ? naiveTopK(tasks.get(i), density)
                  : naiveDrop(
                      tasks.get(i),
                      density,
                      AdapterComposition.dareRandom(seed, inputs.get(i), e.getKey(), factorA)));
        }
        double[] want =
            method == AdapterComposition.Method.DARE_LINEAR
                ? naiveSum(tasks, w)
                : naiveTies(tasks, w);
        assertClose(
            flat(e.getValue(), factorA), want, method + " " + e.getKey() + (factorA ? " A" : " B"));
      }
    }
    if (method != AdapterComposition.Method.TIES) {
      LoraForm again = compose(forms, weights, method, density, seed).form();
      LoraForm other = compose(forms, weights, method, density, seed + 1).form();
      String q = "model.layers.0.self_attn.q_proj";
      assertThat(again.modules().get(q).b().equals(out.modules().get(q).b()))
          .as("same seed, same result")
          .isTrue();
      assertThat(other.modules().get(q).b().equals(out.modules().get(q).b()))
          .as("another seed drops others")
          .isFalse();
    }
  }

  @Test
  void refusesWhatPeftRefusesWithOneLineNamingIt() {
    List<LoraForm> mixed = inputs(); // ranks 2, 3 (AdaLoRA's init_r), 2
    List<LoraForm> equal = equalRankInputs();
    assertThatThrownBy(() -> compose(mixed, AdapterComposition.Method.LINEAR, 0, Double.NaN))
        .hasMessageContaining("linear needs one rank")
        .hasMessageContaining("use cat or svd");
    assertThatThrownBy(
            () -> new AdapterComposition.Options(AdapterComposition.Method.CAT, 4, Double.NaN, 0))
        .hasMessageContaining("--rank applies only to svd");
    assertThatThrownBy(
            () ->
                new AdapterComposition.Options(
                    AdapterComposition.Method.DARE_TIES, 0, Double.NaN, 0))
        .hasMessageContaining("--density must be in (0, 1] for dare_ties");
    assertThatThrownBy(() -> AdapterComposition.Method.parse("magnitude_prune"))
        .hasMessageContaining("valid: cat, svd, linear, ties, dare_linear, dare_ties");
    ModelConfig wider =
        LoraTestModels.parse(
            LoraTestModels.configJson("LlamaForCausalLM", false, false)
                .replace("\"intermediate_size\": 24", "\"intermediate_size\": 28"));
    LoraForm other =
        LoraForm.of(
            "w",
            LoraWeights.init(
                wider, config(LoraMethod.LORA, 2, false, Projection.Q), 1, DataType.FLOAT));
    assertThatThrownBy(
            () ->
                compose(
                    List.of(equal.get(0), other),
                    new double[] {1, 1},
                    AdapterComposition.Method.CAT,
                    Double.NaN,
                    0))
        .hasMessageContaining("adapter 'w' was made for a model of")
        .hasMessageContaining("compose only adapters of one base model");
  }

  // ---- helpers ----

  static List<LoraForm> equalRankInputs() {
    return List.of(
        LoraForm.of("a", moved(config(LoraMethod.LORA, 2, false, Projection.Q, Projection.V), 1)),
        LoraForm.of("b", moved(config(LoraMethod.LORA, 2, true, Projection.Q, Projection.O), 2)),
        LoraForm.of("c", moved(config(LoraMethod.VERA, 2, false, Projection.V, Projection.Q), 3)));
  }

  static AdapterComposition.Result compose(
      List<LoraForm> forms, AdapterComposition.Method m, int rank, double density) {
    return AdapterComposition.compose(
        forms, WEIGHTS, new AdapterComposition.Options(m, rank, density, 0));
  }

  static AdapterComposition.Result compose(
      List<LoraForm> forms,
      double[] weights,
      AdapterComposition.Method m,
      double density,
      long seed) {
    return AdapterComposition.compose(
        forms, weights, new AdapterComposition.Options(m, 0, density, seed));
  }

  /**
   * The inputs' A or B of {@code module}, flattened, with PEFT's weights (A: sign(w·s)·√|w·s|, B:
   * √|w·s|), for those that have it.
   */
  static void collect(
      List<LoraForm> forms,
      double[] weights,
      String module,
      boolean factorA,
      List<double[]> tasks,
      List<Double> w,
      List<Integer> inputs) {
    for (int i = 0; i < forms.size(); i++) {
      LoraForm.Factors f = forms.get(i).modules().get(module);
      if (f != null) {
        tasks.add(flat(f, factorA));
        double ws = weights[i] * f.scaling();
        w.add(factorA ? Math.signum(ws) * Math.sqrt(Math.abs(ws)) : Math.sqrt(Math.abs(ws)));
        inputs.add(i);
      }
    }
  }

  static double[] flat(LoraForm.Factors f, boolean factorA) {
    double[][] m = (factorA ? f.a() : f.b()).toDoubleMatrix();
    return java.util.Arrays.stream(m).flatMapToDouble(java.util.Arrays::stream).toArray();
  }

  /** Σ_i w_i s_i B_i A_i by loops. */
  static double[][] naiveWeightedSum(List<LoraForm> forms, double[] weights, String module) {
    double[][] out = null;
    for (int k = 0; k < forms.size(); k++) {
      LoraForm.Factors f = forms.get(k).modules().get(module);
      if (f == null) {
        continue;
      }
      double[][] a = f.a().toDoubleMatrix();
      double[][] b = f.b().toDoubleMatrix();
      out = out == null ? new double[b.length][a[0].length] : out;
      for (int i = 0; i < b.length; i++) {
        for (int j = 0; j < a[0].length; j++) {
          double s = 0;
          for (int r = 0; r < a.length; r++) {
            s += b[i][r] * a[r][j];
          }
          out[i][j] += weights[k] * f.scaling() * s;
        }
      }
    }
    return out;
  }

  static double[] naiveTopK(double[] t, double density) {
    int k = (int) (density * t.length);
    Integer[] order = IntStream.range(0, t.length).boxed().toArray(Integer[]::new);
    java.util.Arrays.sort(
        order, Comparator.comparingDouble((Integer j) -> -Math.abs(t[j])).thenComparingInt(j -> j));
    double[] out = new double[t.length];
    for (int i = 0; i < k; i++) {
      out[order[i]] = t[order[i]];
    }
    return out;
  }

  static double[] naiveDrop(double[] t, double density, SplittableRandom rng) {
    double[] out = new double[t.length];
    for (int j = 0; j < t.length; j++) {
      out[j] = rng.nextDouble() < density ? t[j] / density : 0;
    }
    return out;
  }

  static double[] naiveSum(List<double[]> tasks, List<Double> w) {
    double[] out = new double[tasks.get(0).length];
    for (int i = 0; i < tasks.size(); i++) {
      for (int j = 0; j < out.length; j++) {
        out[j] += w.get(i) * tasks.get(i)[j];
      }
    }
    return out;
  }

  /** Sign by the sum of the pruned tasks; mean of the weighted entries that agree. */
  static double[] naiveTies(List<double[]> tasks, List<Double> w) {
    double[] out = new double[tasks.get(0).length];
    for (int j = 0; j < out.length; j++) {
      double total = 0;
      for (double[] t : tasks) {
        total += t[j];
      }
      double num = 0;
      int count = 0;
      for (int i = 0; i < tasks.size(); i++) {
        double v = tasks.get(i)[j];
        if ((total >= 0 && v > 0) || (total < 0 && v < 0)) {
          num += w.get(i) * v;
          count++;
        }
      }
      out[j] = count == 0 ? 0 : num / count;
    }
    return out;
  }

  static void assertClose(double[] got, double[] want, String what) {
    double diff = 0;
    double scale = 0;
    for (int j = 0; j < want.length; j++) {
      diff = Math.max(diff, Math.abs(got[j] - want[j]));
      scale = Math.max(scale, Math.abs(want[j]));
    }
    assertThat(scale).as("%s: nonzero", what).isGreaterThan(0);
    assertThat(diff / scale).as("%s: max |got − naive| / max |naive|", what).isLessThan(EXACT);
  }

  static double relative(INDArray got, INDArray want) {
    return relative(got, want.toDoubleMatrix());
  }

  static double relative(INDArray got, double[][] want) {
    double[][] g = got.castTo(DataType.DOUBLE).toDoubleMatrix();
    double diff = 0;
    double scale = 0;
    for (int i = 0; i < want.length; i++) {
      for (int j = 0; j < want[0].length; j++) {
        diff = Math.max(diff, Math.abs(g[i][j] - want[i][j]));
        scale = Math.max(scale, Math.abs(want[i][j]));
      }
    }
    return diff / scale;
  }
}
