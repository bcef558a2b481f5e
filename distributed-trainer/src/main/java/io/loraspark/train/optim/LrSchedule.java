package io.loraspark.train.optim;

import static io.loraspark.train.model.ModelConfig.require;

import java.util.Arrays;
import java.util.Locale;

/**
 * A learning-rate schedule with linear warmup, matching Hugging Face transformers' {@code
 * get_constant_schedule_with_warmup}, {@code get_linear_schedule_with_warmup} and {@code
 * get_cosine_schedule_with_warmup} (one half cosine, {@code num_cycles=0.5}; Loshchilov &amp;
 * Hutter 2017, arXiv:1608.03983, without restarts), optionally decaying to a floor as {@code
 * get_cosine_with_min_lr_schedule_with_warmup} does.
 *
 * @param kind the decay shape after warmup
 * @param peakLr the learning rate at the end of warmup, &gt; 0
 * @param warmupSteps optimizer steps of linear warmup from 0, in [0, totalSteps]
 * @param totalSteps optimizer steps in the whole run, &gt; 0
 * @param minLrRatio the floor of the decay as a fraction of {@code peakLr}, in [0, 1]; 0 is Hugging
 *     Face's behaviour; ignored by {@link Kind#CONSTANT}
 */
public record LrSchedule(
    Kind kind, double peakLr, int warmupSteps, int totalSteps, double minLrRatio) {

  /** The decay shape after warmup. */
  public enum Kind {
    /** Constant at the peak. */
    CONSTANT,
    /** Linear decay to the floor at {@code totalSteps}. */
    LINEAR,
    /** Half-cosine decay to the floor at {@code totalSteps}. */
    COSINE;

    /**
     * The kind named {@code constant}, {@code linear} or {@code cosine}, in any case.
     *
     * @throws IllegalArgumentException listing the valid names otherwise
     */
    public static Kind parse(String name) {
      for (Kind k : values()) {
        if (name != null && k.name().equalsIgnoreCase(name.trim())) {
          return k;
        }
      }
      throw new IllegalArgumentException(
          "lr scheduler must be one of "
              + Arrays.stream(values()).map(k -> k.name().toLowerCase(Locale.ROOT)).toList()
              + " but was "
              + (name == null ? "null" : "'" + name + "'"));
    }
  }

  public LrSchedule {
    require(kind != null, "lr scheduler kind must not be null");
    require(Double.isFinite(peakLr) && peakLr > 0, "lr must be > 0 but was %s", peakLr);
    require(totalSteps > 0, "total_steps must be > 0 but was %d", totalSteps);
    require(
        warmupSteps >= 0 && warmupSteps <= totalSteps,
        "warmup_steps must be in [0, total_steps=%d] but was %d",
        totalSteps,
        warmupSteps);
    require(
        minLrRatio >= 0 && minLrRatio <= 1,
        "min_lr_ratio must be in [0, 1] but was %s",
        minLrRatio);
  }

  /** A schedule decaying to 0, exactly as Hugging Face's. */
  public static LrSchedule of(Kind kind, double peakLr, int warmupSteps, int totalSteps) {
    return new LrSchedule(kind, peakLr, warmupSteps, totalSteps, 0.0);
  }

  /**
   * The learning rate for 0-based optimizer step {@code step}: {@code peakLr * multiplier(step)}.
   */
  public double lr(int step) {
    return peakLr * multiplier(step);
  }

  /**
   * The learning-rate multiplier (Hugging Face's {@code lr_lambda}) for 0-based optimizer step
   * {@code step}, in [0, 1].
   *
   * @throws IllegalArgumentException unless 0 &lt;= step &lt;= totalSteps
   */
  public double multiplier(int step) {
    require(
        step >= 0 && step <= totalSteps,
        "lr schedule step must be in [0, total_steps=%d] but was %d",
        totalSteps,
        step);
    if (step < warmupSteps) {
      return (double) step / Math.max(1, warmupSteps); // linear warmup from 0
    }
    double decayed =
        switch (kind) {
          case CONSTANT -> 1.0;
          case LINEAR ->
              Math.max(0.0, (double) (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
          case COSINE -> {
            double progress = (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
            yield Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * progress)));
          }
        };
    return kind == Kind.CONSTANT ? decayed : minLrRatio + (1 - minLrRatio) * decayed;
  }
}
