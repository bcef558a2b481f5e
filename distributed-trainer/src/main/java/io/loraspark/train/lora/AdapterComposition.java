package io.loraspark.train.lora;

import io.loraspark.train.model.ModelConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Weighted combinations of additive adapters in {@link LoraForm}, with the meanings of PEFT's
 * {@code LoraModel.add_weighted_adapter} (peft/tuners/lora/model.py). Only {@code cat} and {@code
 * svd} combine the weight updates {@code Σ_i w_i ΔW_i}; {@code linear}, {@code ties}, {@code
 * dare_linear} and {@code dare_ties} combine the A's and the B's apart, each input's A weighted by
 * {@code sign(w_i s_i)·√|w_i s_i|} and its B by {@code √|w_i s_i|} (PEFT 0.18+, which takes
 * negative weights so), so their product has cross terms {@code B_i A_j} and is not the weighted ΔW
 * sum (PEFT requires one rank for them). A module an input lacks is left out of that module's
 * combination, as PEFT does. The result has scaling 1 on every module.
 *
 * <p>Two departures from PEFT, both chosen: {@code svd} truncates {@code Σ w_i s_i B_i A_i}, the
 * sum {@code cat} writes exactly, where PEFT's weights {@code w_i s_i} multiply updates that
 * already include {@code s_i} (so PEFT's svd differs from its cat whenever alpha ≠ r); and one
 * input is combined by the method asked for, where PEFT silently switches to {@code linear}.
 */
public final class AdapterComposition {
  private AdapterComposition() {}

  /** The combination methods, by PEFT's {@code combination_type} names. */
  public enum Method {
    /** Exact: rows of A and columns of B concatenated, {@code r = Σ r_i}. */
    CAT("cat", true),
    /** The exact weighted ΔW sum truncated to rank R by SVD (Eckart–Young). */
    SVD("svd", true),
    /** {@code A = Σ sign(w_i s_i)√|w_i s_i| A_i}, {@code B = Σ √|w_i s_i| B_i}. */
    LINEAR("linear", false),
    /** TIES on the A's and on the B's. */
    TIES("ties", false),
    /** DARE then a weighted sum, on the A's and on the B's. */
    DARE_LINEAR("dare_linear", false),
    /** DARE then TIES' sign election and merge, on the A's and on the B's. */
    DARE_TIES("dare_ties", false);

    private final String key;
    private final boolean weightedDeltaSum;

    Method(String key, boolean weightedDeltaSum) {
      this.key = key;
      this.weightedDeltaSum = weightedDeltaSum;
    }

    public String key() {
      return key;
    }

    /** Whether the result is the weighted sum of the inputs' ΔW (exactly, or truncated). */
    public boolean weightedDeltaSum() {
      return weightedDeltaSum;
    }

    /** Whether it needs a density (TIES and DARE). */
    public boolean usesDensity() {
      return this == TIES || this == DARE_LINEAR || this == DARE_TIES;
    }

    /**
     * The method named {@code name} (case-insensitive).
     *
     * @throws IllegalArgumentException naming the valid methods
     */
    public static Method parse(String name) {
      for (Method m : values()) {
        if (m.key.equals(name == null ? "" : name.trim().toLowerCase(Locale.ROOT))) {
          return m;
        }
      }
      throw new IllegalArgumentException(
          "unknown composition method '"
              + name
              + "'; valid: "
              + String.join(", ", Arrays.stream(values()).map(Method::key).toList()));
    }
  }

  /**
   * How to combine.
   *
   * @param method the combination
   * @param rank svd's R, or 0 for PEFT's default (the largest input rank); must be 0 otherwise
   * @param density the fraction kept by TIES and DARE, in (0, 1]; NaN for the other methods
   * @param seed the root of DARE's keep/drop draws (one generator per input, module and factor)
   */
  public record Options(Method method, int rank, double density, long seed) {
    public Options {
      ModelConfig.require(method != null, "method is required");
      ModelConfig.require(
          rank == 0 || method == Method.SVD,
          "--rank applies only to svd, not %s (its rank is fixed by the inputs)",
          method.key());
      ModelConfig.require(rank >= 0, "--rank must be > 0 but was %d", rank);
      if (method.usesDensity()) {
        ModelConfig.require(
            density > 0 && density <= 1,
            "--density must be in (0, 1] for %s but was %s",
            method.key(),
            density);
      } else {
        ModelConfig.require(
            Double.isNaN(density), "--density applies only to ties, dare_linear and dare_ties");
      }
    }
  }

  /**
   * The combined adapter.
   *
   * @param form the result, scaling 1 on every module, one rank for all modules
   * @param relativeErrors svd only: per module {@code ‖ΔW − ΔW_R‖_F / ‖ΔW‖_F} of the weighted ΔW
   *     sum and its rank-R truncation (0 for a zero ΔW); empty for the other methods
   */
  public record Result(LoraForm form, Map<String, Double> relativeErrors) {}

  /**
   * Combines {@code forms} with {@code weights} by {@code options.method()}.
   *
   * @throws IllegalArgumentException naming the adapter, module or option when the inputs do not
   *     fit the method (different base shapes, unequal ranks for linear/ties/dare)
   */
  public static Result compose(List<LoraForm> forms, double[] weights, Options options) {
    LoraFormWriter.requireCompatible(forms, weights);
    return switch (options.method()) {
      case CAT -> new Result(LoraFormWriter.concatenate(forms, weights), Map.of());
      case SVD -> svd(forms, weights, options.rank() > 0 ? options.rank() : maxRank(forms));
      default -> taskArithmetic(forms, weights, options);
    };
  }

  private static int maxRank(List<LoraForm> forms) {
    return forms.stream().mapToInt(LoraForm::maxRank).max().orElse(1);
  }

  /** The exact concatenation, re-factorised per module to rank R (never forming [out, in]). */
  private static Result svd(List<LoraForm> forms, double[] weights, int rank) {
    LoraForm cat = LoraFormWriter.concatenate(forms, weights);
    Map<String, LoraForm.Factors> out = new LinkedHashMap<>();
    Map<String, Double> errors = new LinkedHashMap<>();
    for (Map.Entry<String, LoraForm.Factors> e : cat.modules().entrySet()) {
      LoraForm.Factors f = e.getValue();
      ReplicaAggregation.Factors t = ReplicaAggregation.refactor(f.b(), f.a(), rank, 1.0);
      out.put(e.getKey(), new LoraForm.Factors(f.layer(), f.proj(), t.a(), t.b(), 1.0));
      errors.put(e.getKey(), truncationError(t.sigma(), rank));
    }
    return new Result(new LoraForm("svd", cat.model(), out), errors);
  }

  /** {@code √(Σ_{i ≥ k} σ_i²) / √(Σ σ_i²)}, 0 when every σ is 0. */
  static double truncationError(INDArray sigma, int k) {
    double[] s = sigma.castTo(DataType.DOUBLE).toDoubleVector();
    double all = 0;
    double cut = 0;
    for (int i = 0; i < s.length; i++) {
      all += s[i] * s[i];
      cut += i >= k ? s[i] * s[i] : 0;
    }
    return all == 0 ? 0 : Math.sqrt(cut / all);
  }

  /** linear, ties, dare_*: PEFT's combination of the A's and of the B's, per module. */
  private static Result taskArithmetic(List<LoraForm> forms, double[] weights, Options o) {
    requireOneRank(forms, o.method());
    Map<String, LoraForm.Factors> out = new LinkedHashMap<>();
    for (Map.Entry<String, LoraForm.Factors> site : LoraFormWriter.union(forms).entrySet()) {
      List<LoraForm.Factors> present = new ArrayList<>();
      List<Integer> inputs = new ArrayList<>();
      for (int i = 0; i < forms.size(); i++) {
        LoraForm.Factors f = forms.get(i).modules().get(site.getKey());
        if (f != null) {
          present.add(f);
          inputs.add(i);
        }
      }
      double[] wa = new double[present.size()]; // PEFT: sign(w s)·√|w s| on A, √|w s| on B
      double[] wb = new double[present.size()];
      for (int k = 0; k < wa.length; k++) {
        double ws = weights[inputs.get(k)] * present.get(k).scaling();
        wb[k] = Math.sqrt(Math.abs(ws));
        wa[k] = ws < 0 ? -wb[k] : wb[k];
      }
      LoraForm.Factors first = present.get(0);
      INDArray a = combine(present, true, wa, o, site.getKey(), inputs);
      INDArray b = combine(present, false, wb, o, site.getKey(), inputs);
      out.put(site.getKey(), new LoraForm.Factors(first.layer(), first.proj(), a, b, 1.0));
    }
    return new Result(new LoraForm(o.method().key(), forms.get(0).model(), out), Map.of());
  }

  /** One factor (A or B) of one module combined over the inputs that have it. */
  private static INDArray combine(
      List<LoraForm.Factors> present,
      boolean factorA,
      double[] w,
      Options o,
      String module,
      List<Integer> inputs) {
    double[][] tasks = new double[present.size()][];
    for (int i = 0; i < tasks.length; i++) {
      INDArray t = factorA ? present.get(i).a() : present.get(i).b();
      tasks[i] = t.dup('c').reshape(t.length()).toDoubleVector();
    }
    SplittableRandom[] rngs = new SplittableRandom[tasks.length];
    for (int i = 0; i < tasks.length; i++) {
      rngs[i] = dareRandom(o.seed(), inputs.get(i), module, factorA);
    }
    double[] merged =
        switch (o.method()) {
          case LINEAR -> TaskArithmetic.linear(tasks, w);
          case TIES -> TaskArithmetic.ties(tasks, w, o.density());
          case DARE_LINEAR -> TaskArithmetic.dareLinear(tasks, w, o.density(), rngs);
          case DARE_TIES -> TaskArithmetic.dareTies(tasks, w, o.density(), rngs);
          default -> throw new IllegalStateException(o.method() + " is not task arithmetic");
        };
    INDArray shape = factorA ? present.get(0).a() : present.get(0).b();
    return Nd4j.create(merged, shape.shape(), 'c');
  }

  /**
   * DARE's generator for input {@code input}'s factor of {@code module}: a pure function of the
   * seed and those three, so a rerun with the same seed drops the same entries.
   */
  public static SplittableRandom dareRandom(long seed, int input, String module, boolean factorA) {
    long h = seed;
    h = h * 1_000_003L + input;
    h = h * 1_000_003L + module.hashCode();
    h = h * 1_000_003L + (factorA ? 'A' : 'B');
    return new SplittableRandom(h);
  }

  /** The one rank of every module of every input, as PEFT requires for these methods. */
  private static void requireOneRank(List<LoraForm> forms, Method method) {
    int rank = -1;
    String where = null;
    for (LoraForm f : forms) {
      for (Map.Entry<String, LoraForm.Factors> e : f.modules().entrySet()) {
        int r = e.getValue().rank();
        if (rank < 0) {
          rank = r;
          where = "adapter '" + f.name() + "' module " + e.getKey();
        }
        ModelConfig.require(
            r == rank,
            "%s needs one rank for every adapter and module (PEFT's rule) but %s has r=%d and"
                + " adapter '%s' module %s r=%d; use cat or svd",
            method.key(),
            where,
            rank,
            f.name(),
            e.getKey(),
            r);
      }
    }
  }
}
