package io.loraspark.train.lora;

import io.loraspark.train.model.ModelConfig;

/**
 * Delta-LoRA's two settings (Zi et al. 2023, arXiv:2309.02411): the update ratio λ by which W
 * follows the change of s·B·A, and the start step K from which it does, both inputs of the paper's
 * Algorithm 1 (whose text, with λ and K as inputs, was checked here). λ = {@value
 * #PAPER_UPDATE_RATIO} and K = {@value #PAPER_START_STEP} are the values the project's issue gives
 * as the paper's experimental settings; the paper's experiment section could not be opened where
 * this was written, so those two values are not checked against it and no section or table is
 * cited. Earlier versions called 0.5 the paper's λ.
 *
 * @param updateRatio λ, finite and ≥ 0 (0 trains plain LoRA)
 * @param startStep K, the optimizer step (0-based) whose update first moves W, ≥ 0; or {@link
 *     #AUTO}: min({@value #PAPER_START_STEP}, totalSteps / 10), so short runs still move W
 * @param dense whether the adapter is one saved before the low-rank form, with its dense ΔW ({@code
 *     delta_weight}) per module: read and scored, never trained
 */
public record DeltaLoraParams(double updateRatio, int startStep, boolean dense)
    implements java.io.Serializable {

  /** The paper's λ. */
  public static final double PAPER_UPDATE_RATIO = 2.0;

  /** The paper's K, capped at a tenth of a shorter run by {@link #AUTO}. */
  public static final int PAPER_START_STEP = 500;

  /** {@link #startStep} that means min(500, totalSteps / 10). */
  public static final int AUTO = -1;

  /** λ = 2, K = min(500, totalSteps / 10). */
  public static final DeltaLoraParams DEFAULTS =
      new DeltaLoraParams(PAPER_UPDATE_RATIO, AUTO, false);

  /** An adapter saved with its dense ΔW by an earlier version (its λ and K are not recorded). */
  public static final DeltaLoraParams DENSE = new DeltaLoraParams(0, AUTO, true);

  public DeltaLoraParams {
    ModelConfig.require(
        Double.isFinite(updateRatio) && updateRatio >= 0,
        "Cannot set delta_update_ratio to %s, must be a finite number >= 0 (the paper's is 2)",
        updateRatio);
    ModelConfig.require(
        startStep >= 0 || startStep == AUTO,
        "Cannot set delta_start_step to %d, must be an integer >= 0",
        startStep);
  }

  /** The given λ and K, or their defaults where null (K: the capped {@link #AUTO}). */
  public static DeltaLoraParams of(Double updateRatio, Integer startStep) {
    return new DeltaLoraParams(
        updateRatio == null ? PAPER_UPDATE_RATIO : updateRatio,
        startStep == null ? AUTO : startStep,
        false);
  }

  /** K for a run of {@code totalSteps} optimizer steps. */
  public long startStep(int totalSteps) {
    return startStep == AUTO ? Math.min(PAPER_START_STEP, totalSteps / 10) : startStep;
  }

  /** This with K resolved for a run of {@code totalSteps} steps. */
  public DeltaLoraParams resolved(int totalSteps) {
    return new DeltaLoraParams(updateRatio, (int) startStep(totalSteps), dense);
  }
}
