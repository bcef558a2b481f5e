package io.loraspark.pipeline.sweep;

import io.loraspark.train.lora.LoraMethod;
import java.util.List;
import java.util.Optional;

/**
 * The one table of adapter settings: every setting an adapter of a sweep ({@code defaults}, {@code
 * grid}, {@code adapters}), {@code train}'s flags and the Spark ML {@code LoraEstimator} take, with
 * its name, type, default (or the rule of its derived default), the prefix it gives adapter ids and
 * its meaning. The README's reference ({@link ConfigKeys#ADAPTER}), adapter ids ({@link
 * SweepPlan}), {@code train}'s option defaults and the estimator's param defaults are read from
 * here; {@code AdapterSettingsTest} walks the table and checks {@code train --help}, the Spark ML
 * params and the README against it.
 *
 * <p>Adding a setting is one entry here (plus where it is used: its record field and the {@link
 * io.loraspark.train.loop.AdapterKey} line).
 */
public final class AdapterSettings {
  /**
   * One adapter setting.
   *
   * @param name the YAML key ({@code lr_ratio})
   * @param type its value type, as the reference names it
   * @param javaType the class its values have once read ({@link SettingValues})
   * @param defaultValue the default, or null when it is derived ({@code derived} says how)
   * @param derived the documented default when it is derived from other settings ({@code 2 ·
   *     rank}), else null
   * @param idPrefix what it writes before its value in an adapter id when the grid varies it
   *     ({@code x} in {@code a007-r8-x16}); "" for the value alone
   * @param meaning one line for the reference (which adds the range, {@link #description()})
   * @param trainOption {@code train}'s flag, or null when {@code train} has none
   * @param mlParam the Spark ML param's name, or null when the estimator has none
   * @param range the valid values of a numeric setting, null when any value of its type is
   */
  public record Setting<T>(
      String name,
      ConfigKeys.Type type,
      Class<T> javaType,
      T defaultValue,
      String derived,
      String idPrefix,
      String meaning,
      String trainOption,
      String mlParam,
      SettingRange range) {
    /** The reference's meaning: {@code meaning}, then the valid values when there is a range. */
    public String description() {
      return range == null ? meaning : meaning + "; " + range.text();
    }

    /** The default as the reference shows it. */
    public String defaultText() {
      return derived != null ? derived : text(defaultValue);
    }

    /** The default as a command-line value, null when derived. */
    public String defaultArgument() {
      return defaultValue == null ? null : text(defaultValue);
    }

    private static String text(Object v) {
      return v instanceof Double d ? Double.toString(d).replace("E", "e") : String.valueOf(v);
    }

    /**
     * Throws naming {@code what} (the YAML key or the flag) when {@code value} is outside the
     * setting's range; any value passes a setting without one.
     */
    public void check(String what, Object value) {
      if (range != null) {
        range.require(what, value);
      }
    }

    /** The default {@code train} and the Spark ML params take, empty when derived. */
    public Optional<T> fixedDefault() {
      return Optional.ofNullable(defaultValue);
    }
  }

  public static final Setting<String> METHOD =
      new Setting<>(
          "method",
          ConfigKeys.Type.STRING,
          String.class,
          "lora",
          null,
          "",
          "adapter method: " + String.join(", ", LoraMethod.keys()) + " (see Methods)",
          "--method",
          "method",
          null);
  public static final Setting<Integer> RANK =
      new Setting<>(
          "rank",
          ConfigKeys.Type.INTEGER,
          Integer.class,
          8,
          null,
          "r",
          "LoRA rank r",
          "--rank",
          "rank",
          SettingRange.ints(1, 4096));
  public static final Setting<Double> ALPHA =
      new Setting<>(
          "alpha",
          ConfigKeys.Type.NUMBER,
          Double.class,
          null,
          "2 · rank",
          "a",
          "LoRA alpha; scaling s = alpha / r",
          "--alpha",
          "alpha",
          SettingRange.positive());
  public static final Setting<Double> DROPOUT =
      new Setting<>(
          "dropout",
          ConfigKeys.Type.NUMBER,
          Double.class,
          0.0,
          null,
          "d",
          "dropout on the adapter input",
          "--dropout",
          "dropout",
          SettingRange.halfOpen(0, 1));
  public static final Setting<Boolean> RSLORA =
      new Setting<>(
          "rslora",
          ConfigKeys.Type.BOOLEAN,
          Boolean.class,
          false,
          null,
          "rs",
          "rank-stabilised scaling s = alpha / √r",
          "--rslora",
          "rsLora",
          null);
  public static final Setting<String> TARGETS =
      new Setting<>(
          "targets",
          ConfigKeys.Type.NAMES,
          String.class,
          "q,k,v,o,gate,up,down",
          null,
          "t",
          "projections adapted: q, k, v, o, gate, up, down (or q_proj …)",
          "--targets",
          "targets",
          null);
  public static final Setting<Double> LR =
      new Setting<>(
          "lr",
          ConfigKeys.Type.NUMBER,
          Double.class,
          2.0e-4,
          null,
          "lr",
          "peak learning rate (AdamW)",
          "--lr",
          "learningRate",
          SettingRange.positive());
  public static final Setting<Double> LR_RATIO =
      new Setting<>(
          "lr_ratio",
          ConfigKeys.Type.NUMBER,
          Double.class,
          1.0,
          null,
          "x",
          "LoRA+ ratio: B's learning rate is lr · lr_ratio",
          "--lr-ratio",
          "lrRatio",
          SettingRange.positive());
  public static final Setting<Integer> STEPS =
      new Setting<>(
          "steps",
          ConfigKeys.Type.INTEGER,
          Integer.class,
          100,
          null,
          "s",
          "optimizer steps",
          "--steps",
          "steps",
          SettingRange.intsFrom(1));
  public static final Setting<Integer> BATCH_SIZE =
      new Setting<>(
          "batch_size",
          ConfigKeys.Type.INTEGER,
          Integer.class,
          8,
          null,
          "b",
          "rows per micro-batch",
          "--batch-size",
          "batchSize",
          SettingRange.intsFrom(1));
  public static final Setting<Integer> GRAD_ACCUM =
      new Setting<>(
          "grad_accum",
          ConfigKeys.Type.INTEGER,
          Integer.class,
          1,
          null,
          "ga",
          "micro-batches per optimizer step",
          "--grad-accum",
          "gradAccum",
          SettingRange.intsFrom(1));
  public static final Setting<Integer> WARMUP_STEPS =
      new Setting<>(
          "warmup_steps",
          ConfigKeys.Type.INTEGER,
          Integer.class,
          null,
          "steps / 10",
          "w",
          "linear warmup steps",
          "--warmup",
          "warmupSteps",
          SettingRange.intsFrom(0));
  public static final Setting<String> SCHEDULE =
      new Setting<>(
          "schedule",
          ConfigKeys.Type.STRING,
          String.class,
          "cosine",
          null,
          "",
          "learning-rate schedule after warmup: cosine, linear or constant",
          "--schedule",
          "schedule",
          null);
  public static final Setting<Double> WEIGHT_DECAY =
      new Setting<>(
          "weight_decay",
          ConfigKeys.Type.NUMBER,
          Double.class,
          0.0,
          null,
          "wd",
          "AdamW decoupled weight decay",
          "--weight-decay",
          "weightDecay",
          SettingRange.nonNegative());
  public static final Setting<Double> MAX_GRAD_NORM =
      new Setting<>(
          "max_grad_norm",
          ConfigKeys.Type.NUMBER,
          Double.class,
          1.0,
          null,
          "clip",
          "global gradient-norm clip (0: off)",
          "--max-grad-norm",
          "maxGradNorm",
          SettingRange.nonNegative());
  public static final Setting<Integer> EVAL_EVERY =
      new Setting<>(
          "eval_every",
          ConfigKeys.Type.INTEGER,
          Integer.class,
          0,
          null,
          "ev",
          "steps between eval-loss measurements (0: at the end and at each rung)",
          "--eval-every",
          null,
          SettingRange.intsFrom(0));

  /** {@code train} and the estimator take 42 as is; a sweep derives each adapter's from it. */
  public static final Setting<Long> SEED =
      new Setting<>(
          "seed",
          ConfigKeys.Type.INTEGER,
          Long.class,
          42L,
          "derived from 42",
          "seed",
          "init, data order and dropout seed; by default each adapter's is derived from"
              + " `defaults.seed` (else 42) and its index",
          "--seed",
          "seed",
          null);

  /**
   * Delta-LoRA's λ and K (Zi et al. 2023's values; {@code DeltaLoraParams}); other methods ignore
   * them. {@code train} has their flags but no default from here: there a flag given with another
   * method is a usage error.
   */
  public static final Setting<Double> DELTA_UPDATE_RATIO =
      new Setting<>(
          "delta_update_ratio",
          ConfigKeys.Type.NUMBER,
          Double.class,
          2.0,
          null,
          "dl",
          "delta-lora only (others ignore it): λ, W moves by λ × the change of s·B·A"
              + " (Zi et al. 2023's value)",
          null,
          "deltaUpdateRatio",
          SettingRange.nonNegative());

  public static final Setting<Integer> DELTA_START_STEP =
      new Setting<>(
          "delta_start_step",
          ConfigKeys.Type.INTEGER,
          Integer.class,
          null,
          "min(500, steps / 10)",
          "dk",
          "delta-lora only (others ignore it): K, the first optimizer step (0-based) whose"
              + " update moves W; the paper's 500, capped for short runs",
          null,
          "deltaStartStep",
          SettingRange.intsFrom(0));

  public static final Setting<Integer> REPLICAS =
      new Setting<>(
          "replicas",
          ConfigKeys.Type.INTEGER,
          Integer.class,
          1,
          null,
          "R",
          "data-parallel copies on disjoint rows, combined exactly by truncated SVD",
          null,
          null,
          SettingRange.ints(1, 64));

  /**
   * The frozen parent a child adapter trains on (issue 22); its content hash, taken when the sweep
   * is planned or {@code train} starts, is part of the adapter's checkpoint key.
   */
  public static final Setting<String> PARENT =
      new Setting<>(
          "parent",
          ConfigKeys.Type.URI,
          String.class,
          null,
          "none",
          "p",
          "a PEFT adapter directory the adapter trains on top of, frozen with its own parents"
              + " (see Trees of adapters)",
          "--parent",
          null,
          null);

  /** Every adapter setting, in the reference's order. */
  public static final List<Setting<?>> ALL =
      List.of(
          METHOD,
          RANK,
          ALPHA,
          DROPOUT,
          RSLORA,
          TARGETS,
          LR,
          LR_RATIO,
          STEPS,
          BATCH_SIZE,
          GRAD_ACCUM,
          WARMUP_STEPS,
          SCHEDULE,
          WEIGHT_DECAY,
          MAX_GRAD_NORM,
          EVAL_EVERY,
          SEED,
          DELTA_UPDATE_RATIO,
          DELTA_START_STEP,
          REPLICAS,
          PARENT);

  private AdapterSettings() {}

  /** The setting named {@code name}, empty when there is none. */
  public static Optional<Setting<?>> find(String name) {
    return ALL.stream().filter(s -> s.name().equals(name)).findFirst();
  }

  /** The setting whose {@code train} flag is {@code option}, empty when there is none. */
  public static Optional<Setting<?>> byTrainOption(String option) {
    return ALL.stream().filter(s -> option.equals(s.trainOption())).findFirst();
  }
}
