package io.loraspark.train.lora;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * AdaLoRA's budget allocator for one adapter (PEFT's {@code RankAllocator} and {@code
 * AdaLoraModel.update_and_allocate}): after every optimizer step it smooths each trained entry's
 * sensitivity {@code I = |p · ∇p|} with an EMA (β1) and its uncertainty {@code |I − Ī|} with
 * another (β2), scores each singular triplet i of a module by {@code s(E_i) + mean_j s(A_ij) +
 * mean_k s(B_ki)} with {@code s = Ī · Ū}, and zeroes E of every triplet scoring at or below the
 * k-th smallest score over the adapter, k = init budget − current budget, where the budget falls
 * cubically from Σ init_r to target_r · modules between steps tinit and total − tfinal:
 *
 * <pre>
 *   step ≤ tinit:                 budget = init,   no mask
 *   step > total − tfinal:        budget = target, mask (with the final pattern)
 *   otherwise:                    budget = ⌊(init − target) · (1 − (step − tinit)/(total − tfinal − tinit))³ + target⌋,
 *                                 mask when step % deltaT == 0
 * </pre>
 *
 * Scores update while step &lt; total − tfinal; at step = total − tfinal the mask to the target
 * budget is forced and fixed as the final rank pattern (and the scores reset); after it, that
 * pattern is reapplied every step. The last mask's pattern is the adapter's {@code rank_pattern}.
 * Mutable; one per adapter, kept in its {@link LoraWeights}. The EMA state is not checkpointed (as
 * in PEFT), so a resumed run restarts it; the rank pattern and total step are saved with the
 * adapter.
 */
public final class RankAllocator {

  /**
   * The allocation hyperparameters, PEFT's AdaLoraConfig fields.
   *
   * @param tinit steps of initial warm-up at the full budget
   * @param tfinal steps of final fine-tuning at the target budget
   * @param deltaT steps between two budget allocations
   * @param beta1 EMA factor of the sensitivity
   * @param beta2 EMA factor of the uncertainty
   */
  public record Schedule(int tinit, int tfinal, int deltaT, double beta1, double beta2) {
    /** PEFT's AdaLoraConfig defaults. */
    public static final Schedule PEFT_DEFAULTS = new Schedule(0, 0, 1, 0.85, 0.85);

    public Schedule {
      if (tinit < 0 || tfinal < 0 || deltaT < 1) {
        throw new IllegalArgumentException(
            "AdaLoRA needs tinit >= 0, tfinal >= 0, deltaT >= 1 but got tinit="
                + tinit
                + ", tfinal="
                + tfinal
                + ", deltaT="
                + deltaT);
      }
      if (!(beta1 > 0 && beta1 < 1 && beta2 > 0 && beta2 < 1)) {
        throw new IllegalArgumentException(
            "AdaLoRA needs beta1, beta2 in (0, 1) but got " + beta1 + ", " + beta2);
      }
    }

    /**
     * The budget and whether to mask at {@code step} (PEFT's {@code budget_schedule}).
     *
     * @param initBudget Σ init_r over the modules
     * @param targetBudget target_r · modules
     */
    public Budget budget(long step, int initBudget, int targetBudget, int totalSteps) {
      if (step <= tinit) {
        return new Budget(initBudget, false);
      }
      if (step > totalSteps - tfinal) {
        return new Budget(targetBudget, true);
      }
      double mul = 1 - (double) (step - tinit) / (totalSteps - tfinal - tinit);
      int budget = (int) ((initBudget - targetBudget) * Math.pow(mul, 3) + targetBudget);
      return new Budget(budget, step % deltaT == 0);
    }

    /** PEFT's check: the schedule must leave a budgeting phase. */
    void check(int totalSteps) {
      if (totalSteps <= 0 || tinit >= totalSteps - tfinal) {
        throw new IllegalArgumentException(
            "AdaLoRA schedule tinit="
                + tinit
                + ", tfinal="
                + tfinal
                + " leaves no budgeting phase in "
                + totalSteps
                + " steps; need tinit < steps - tfinal");
      }
    }
  }

  /** A budget (total kept ranks over the adapter) and whether it is enforced at this step. */
  public record Budget(int budget, boolean mask) {}

  /** The EMAs of one trained tensor: sensitivity Ī and uncertainty Ū, each shaped like it. */
  private record Ema(INDArray ipt, INDArray unc) {}

  private final Schedule schedule;
  private final Map<String, Ema> emas = new HashMap<>(); // by trainable name
  private Map<String, boolean[]> rankPattern; // by module name; null before the first mask
  private int totalSteps; // 0 until known

  /** An allocator with PEFT's default schedule. */
  public RankAllocator() {
    this(Schedule.PEFT_DEFAULTS);
  }

  public RankAllocator(Schedule schedule) {
    this.schedule = schedule;
  }

  public Schedule schedule() {
    return schedule;
  }

  /** The adapter's total step count (PEFT's total_step), or 0 before training or loading set it. */
  public int totalSteps() {
    return totalSteps;
  }

  /** Sets the total step count (read back from a saved adapter). */
  void totalSteps(int steps) {
    this.totalSteps = steps;
  }

  /** The kept ranks of module {@code name} by the last mask, or null before any mask. */
  public boolean[] kept(String name) {
    return rankPattern == null ? null : rankPattern.get(name);
  }

  /** The rank pattern of the last mask (module name → kept ranks), or null before any mask. */
  public Map<String, boolean[]> rankPattern() {
    return rankPattern;
  }

  /** Sets the rank pattern (read back from a saved adapter); null clears it. */
  void rankPattern(Map<String, boolean[]> pattern) {
    this.rankPattern = pattern == null ? null : new LinkedHashMap<>(pattern);
  }

  /** Σ init_r over the modules of {@code w}. */
  static int initBudget(LoraWeights w) {
    return w.modules().stream().mapToInt(m -> (int) m.a().rows()).sum();
  }

  /** target_r · modules of {@code w}. */
  static int targetBudget(LoraWeights w) {
    return w.config().rank() * w.modules().size();
  }

  /**
   * PEFT's {@code AdaLoraModel.update_and_allocate(global_step)} on {@code w}, whose gradients of
   * the step just taken are still held.
   *
   * @param step the optimizer steps taken before this one (0 for the first)
   */
  public void updateAndAllocate(LoraWeights w, long step, int totalSteps) {
    schedule.check(totalSteps);
    this.totalSteps = totalSteps;
    long finalStep = (long) totalSteps - schedule.tfinal();
    if (step < finalStep) {
      updateScores(w);
      Budget b = schedule.budget(step, initBudget(w), targetBudget(w), totalSteps);
      if (b.mask()) {
        rankPattern = maskToBudget(w, b.budget());
      }
    } else if (step == finalStep) {
      Budget b = schedule.budget(step, initBudget(w), targetBudget(w), totalSteps);
      rankPattern = maskToBudget(w, b.budget());
      emas.clear();
    } else if (rankPattern != null) {
      applyPattern(w);
    }
  }

  /** PEFT's {@code update_ipt}: the EMAs of |p · ∇p| and of its deviation, for A, B and E. */
  void updateScores(LoraWeights w) {
    for (LoraWeights.Module m : w.modules()) {
      update(m.name() + ".lora_A", m.a(), m.gradA());
      update(m.name() + ".lora_B", m.b(), m.gradB());
      AdaLoraState state = m.state(AdaLoraState.class);
      update(m.name() + "." + AdaLoraState.E, state.e(), state.gradE());
    }
  }

  private void update(String name, INDArray p, INDArray grad) {
    Ema e = emas.computeIfAbsent(name, k -> new Ema(p.ulike().assign(0), p.ulike().assign(0)));
    INDArray ipt = Transforms.abs(p.mul(grad), false); // |p ⊙ ∇p|
    double b1 = schedule.beta1();
    double b2 = schedule.beta2();
    e.ipt().muli(b1).addi(ipt.mul(1 - b1)); // Ī = β1 Ī + (1 − β1) I
    INDArray dev = Transforms.abs(ipt.subi(e.ipt()), false); // |I − Ī|
    e.unc().muli(b2).addi(dev.muli(1 - b2)); // Ū = β2 Ū + (1 − β2) |I − Ī|
  }

  /**
   * Each triplet's score per module: s(E_i) + (mean_j s(A_ij) + mean_k s(B_ki)), s = Ī ⊙ Ū (zero
   * for a tensor never scored), as a double [r] per module name.
   */
  Map<String, double[]> tripletScores(LoraWeights w) {
    Map<String, double[]> out = new LinkedHashMap<>();
    for (LoraWeights.Module m : w.modules()) {
      int r = (int) m.a().rows();
      double[] a = score(m.name() + ".lora_A", r, 1); // [r, in] → per row
      double[] b = score(m.name() + ".lora_B", r, 0); // [out, r] → per column
      double[] e = score(m.name() + "." + AdaLoraState.E, r, 1); // [r, 1]
      double[] t = new double[r];
      for (int i = 0; i < r; i++) {
        t[i] = e[i] + (a[i] + b[i]);
      }
      out.put(m.name(), t);
    }
    return out;
  }

  /** Mean of Ī ⊙ Ū along {@code dim} (1: over the columns of each row; 0: over rows). */
  private double[] score(String name, int r, int dim) {
    Ema e = emas.get(name);
    if (e == null) {
      return new double[r];
    }
    INDArray s = e.ipt().mul(e.unc());
    return s.mean(dim).castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE).toDoubleVector();
  }

  /**
   * PEFT's {@code mask_to_budget}: zeroes E of every triplet whose score is at or below the
   * (initBudget − budget)-th smallest over the adapter (none when that is 0).
   *
   * @return the kept ranks of every module
   */
  Map<String, boolean[]> maskToBudget(LoraWeights w, int budget) {
    Map<String, double[]> scores = tripletScores(w);
    int k = initBudget(w) - budget;
    double threshold = Double.NEGATIVE_INFINITY;
    if (k > 0) {
      List<Double> all = new ArrayList<>();
      scores.values().forEach(v -> Arrays.stream(v).forEach(all::add));
      double[] sorted = all.stream().mapToDouble(Double::doubleValue).sorted().toArray();
      threshold = sorted[Math.min(k, sorted.length) - 1]; // torch.kthvalue, 1-based
    }
    Map<String, boolean[]> pattern = new LinkedHashMap<>();
    for (LoraWeights.Module m : w.modules()) {
      double[] s = scores.get(m.name());
      boolean[] kept = new boolean[s.length];
      for (int i = 0; i < s.length; i++) {
        kept[i] = !(s[i] <= threshold);
      }
      pattern.put(m.name(), kept);
    }
    rankPattern = pattern;
    applyPattern(w);
    return pattern;
  }

  /** PEFT's {@code mask_using_rank_pattern}: E = 0 at every rank the pattern drops. */
  void applyPattern(LoraWeights w) {
    for (LoraWeights.Module m : w.modules()) {
      boolean[] kept = rankPattern.get(m.name());
      INDArray e = m.state(AdaLoraState.class).e();
      for (int i = 0; i < kept.length; i++) {
        if (!kept[i]) {
          e.putScalar(i, 0, 0.0);
        }
      }
    }
  }
}
