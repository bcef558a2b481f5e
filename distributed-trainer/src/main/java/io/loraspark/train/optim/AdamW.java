package io.loraspark.train.optim;

import static io.loraspark.train.model.ModelConfig.require;

import io.loraspark.train.lora.LoraWeights;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * AdamW: Adam with decoupled weight decay (Loshchilov &amp; Hutter 2019, arXiv:1711.05101),
 * computed as {@code torch.optim.AdamW} does with {@code amsgrad=False}, {@code foreach=False},
 * {@code fused=False}, {@code maximize=False}: in each parameter's own dtype, with bias corrections
 * and step sizes in double.
 *
 * <p>For step t (1-based), per parameter p with gradient g and learning rate lr_p = lr ·
 * lrMultiplier:
 *
 * <pre>
 *   p     *= 1 - lr_p · wd
 *   m      = b1 · m + (1 - b1) · g
 *   v      = b2 · v + (1 - b2) · g²
 *   denom  = sqrt(v) / sqrt(1 - b2^t) + eps
 *   p     -= lr_p / (1 - b1^t) · m / denom
 * </pre>
 *
 * <p>Parameter groups with different learning rates are expressed by {@link Param#lrMultiplier()};
 * LoRA+ (Hayou et al. 2024, arXiv:2402.12354) gives every B matrix the multiplier η_B / η_A (see
 * {@link #loraParams}). The moment buffers and one scratch buffer per parameter are allocated once,
 * in the parameter's dtype and shape; {@link #step} updates parameters, moments and nothing else in
 * place, allocating no parameter-sized arrays. Not thread-safe.
 */
public final class AdamW {

  /**
   * One trainable tensor and its gradient.
   *
   * @param name a unique name; optimizer-state keys are {@code name + ".exp_avg"} and {@code name +
   *     ".exp_avg_sq"}
   * @param value the parameter, updated in place by {@link AdamW#step}
   * @param grad dLoss/dvalue, same shape and dtype as {@code value}; read, never written, by the
   *     optimizer
   * @param lrMultiplier this parameter's learning rate divided by the scheduled one, &gt; 0
   */
  public record Param(String name, INDArray value, INDArray grad, double lrMultiplier) {

    public Param {
      require(name != null && !name.isBlank(), "param name must be non-empty");
      require(value != null && grad != null, "param %s needs a value and a grad", name);
      require(
          value.dataType().isFPType(),
          "param %s must be floating point but is %s",
          name,
          value.dataType());
      require(
          Arrays.equals(value.shape(), grad.shape()) && value.dataType() == grad.dataType(),
          "param %s is %s %s but its grad is %s %s",
          name,
          value.dataType(),
          Arrays.toString(value.shape()),
          grad.dataType(),
          Arrays.toString(grad.shape()));
      require(
          Double.isFinite(lrMultiplier) && lrMultiplier > 0,
          "param %s lr multiplier must be > 0 but was %s",
          name,
          lrMultiplier);
    }
  }

  /** The state-key suffix of the first moment, as in PyTorch's optimizer state dict. */
  public static final String EXP_AVG = ".exp_avg";

  /** The state-key suffix of the second moment, as in PyTorch's optimizer state dict. */
  public static final String EXP_AVG_SQ = ".exp_avg_sq";

  private final AdamWConfig cfg;
  private final List<Param> params;
  private final INDArray[] expAvg; // m, per param
  private final INDArray[] expAvgSq; // v, per param
  private final INDArray[] scratch; // per-param temporary, contents meaningless between calls
  private final OptimizerKernels[] kernels; // per param: fused or ND4J, chosen once
  private int step;

  /**
   * An optimizer over {@code params} with zero moments and step count 0.
   *
   * @throws IllegalArgumentException if {@code params} is empty or two params share a name
   */
  public AdamW(AdamWConfig cfg, List<Param> params) {
    require(cfg != null, "AdamW needs a config");
    require(params != null && !params.isEmpty(), "AdamW got an empty parameter list");
    Set<String> names = new HashSet<>();
    for (Param p : params) {
      require(names.add(p.name()), "duplicate param name %s", p.name());
    }
    this.cfg = cfg;
    this.params = List.copyOf(params);
    int n = this.params.size();
    this.expAvg = new INDArray[n];
    this.expAvgSq = new INDArray[n];
    this.scratch = new INDArray[n];
    this.kernels = new OptimizerKernels[n];
    for (int i = 0; i < n; i++) {
      INDArray value = this.params.get(i).value();
      expAvg[i] = Nd4j.zeros(value.dataType(), value.shape());
      expAvgSq[i] = Nd4j.zeros(value.dataType(), value.shape());
      scratch[i] = Nd4j.zeros(value.dataType(), value.shape());
      kernels[i] = OptimizerKernels.of(value, this.params.get(i).grad(), expAvg[i], expAvgSq[i]);
    }
  }

  /**
   * The LoRA+ parameter list of an adapter: for every module, in layer order, {@code <module
   * name>.lora_A.weight} with multiplier 1 and {@code <module name>.lora_B.weight} with multiplier
   * {@code lrRatio} (Hayou et al. 2024, arXiv:2402.12354; η_B = λ·η_A); 1-D parameters (DoRA's
   * {@code lora_magnitude_vector}) are in the B group, as in the reference LoRA+ code, and a frozen
   * A (LoRA-FA) is absent. See {@link LoraWeights#trainables()}.
   *
   * @param lrRatio λ = η_B / η_A, &gt; 0; 1 gives plain LoRA
   */
  public static List<Param> loraParams(LoraWeights w, double lrRatio) {
    require(Double.isFinite(lrRatio) && lrRatio > 0, "lr_ratio must be > 0 but was %s", lrRatio);
    List<Param> out = new ArrayList<>();
    for (LoraWeights.Trainable t : w.trainables()) {
      out.add(new Param(t.name(), t.value(), t.grad(), t.loraPlusB() ? lrRatio : 1.0));
    }
    return out;
  }

  /** An optimizer over {@link #loraParams} of {@code w} with {@code cfg.lrRatio()}. */
  public static AdamW forLora(AdamWConfig cfg, LoraWeights w) {
    return new AdamW(cfg, loraParams(w, cfg.lrRatio()));
  }

  public AdamWConfig config() {
    return cfg;
  }

  /** The parameters, in update and state order. */
  public List<Param> params() {
    return params;
  }

  /** Every parameter's gradient, in {@link #params()} order (e.g. for {@link GradClip}). */
  public List<INDArray> grads() {
    return params.stream().map(Param::grad).toList();
  }

  /** Optimizer steps taken so far (PyTorch's {@code state["step"]}). */
  public int stepCount() {
    return step;
  }

  /**
   * One AdamW step over every parameter, reading the current gradients.
   *
   * @param lr this step's scheduled learning rate, &gt;= 0 (0 on the first warmup step); each param
   *     uses {@code lr * lrMultiplier}
   */
  public void step(double lr) {
    require(Double.isFinite(lr) && lr >= 0, "lr must be >= 0 but was %s", lr);
    step++;
    // bias corrections, in double as Python floats are in PyTorch
    double biasCorrection1 = 1 - Math.pow(cfg.beta1(), step);
    double biasCorrection2Sqrt = Math.sqrt(1 - Math.pow(cfg.beta2(), step));
    for (int i = 0; i < params.size(); i++) {
      update(i, lr * params.get(i).lrMultiplier(), biasCorrection1, biasCorrection2Sqrt);
    }
  }

  /** A step at the config's base learning rate, {@code step(config().lr())}. */
  public void step() {
    step(cfg.lr());
  }

  private void update(int i, double lrP, double biasCorrection1, double biasCorrection2Sqrt) {
    INDArray p = params.get(i).value();
    INDArray g = params.get(i).grad();
    INDArray m = expAvg[i];
    INDArray v = expAvgSq[i];
    INDArray s = scratch[i];
    kernels[i].adamW(p, g, m, v, s, cfg, lrP, biasCorrection1, biasCorrection2Sqrt);
  }

  /**
   * Copies of the moment buffers for a checkpoint, keyed {@code <param name>.exp_avg} and {@code
   * <param name>.exp_avg_sq}, in {@link #params()} order. Save {@link #stepCount()} alongside;
   * later steps do not change the returned arrays.
   */
  public Map<String, INDArray> state() {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (int i = 0; i < params.size(); i++) {
      String name = params.get(i).name();
      out.put(name + EXP_AVG, expAvg[i].dup());
      out.put(name + EXP_AVG_SQ, expAvgSq[i].dup());
    }
    return out;
  }

  /**
   * Restores moments and step count saved by {@link #state()} and {@link #stepCount()}, so that
   * training continues bit-identically. Values are copied (and cast to the parameter's dtype if
   * they differ). Nothing is changed unless the whole state is valid.
   *
   * @throws IllegalArgumentException naming the key when a key is missing, unexpected, or has a
   *     shape different from its parameter's, or when {@code stepCount} is negative
   */
  public void loadState(Map<String, INDArray> state, int stepCount) {
    require(state != null, "optimizer state must not be null");
    require(stepCount >= 0, "optimizer step count must be >= 0 but was %d", stepCount);
    Set<String> expected = new HashSet<>();
    for (Param p : params) {
      for (String key : List.of(p.name() + EXP_AVG, p.name() + EXP_AVG_SQ)) {
        expected.add(key);
        INDArray saved = state.get(key);
        require(saved != null, "optimizer state is missing key %s", key);
        require(
            Arrays.equals(saved.shape(), p.value().shape()),
            "optimizer state key %s has shape %s but param %s has shape %s",
            key,
            Arrays.toString(saved.shape()),
            p.name(),
            Arrays.toString(p.value().shape()));
      }
    }
    for (String key : state.keySet()) {
      require(expected.contains(key), "optimizer state has unexpected key %s", key);
    }
    for (int i = 0; i < params.size(); i++) {
      String name = params.get(i).name();
      expAvg[i].assign(state.get(name + EXP_AVG));
      expAvgSq[i].assign(state.get(name + EXP_AVG_SQ));
    }
    this.step = stepCount;
  }
}
