package io.loraspark.pipeline.ml;

import io.loraspark.pipeline.sweep.AdapterSettings;
import io.loraspark.train.data.ShardReader;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.precision.Precision;
import java.io.Serializable;
import java.util.Set;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.DoubleParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.LongParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.Params;

/**
 * The param objects of one {@link LoraParams} owner ({@link LoraEstimator} or {@link
 * LoraAdapterModel}), created once per owner with its uid and the defaults of {@link
 * AdapterSettings} (those of {@code lora-pipeline train}). Alpha and warmupSteps have no default on
 * purpose: unset, they follow rank (2 × rank) and steps (10% of steps) as the trainer's do, also
 * when a param grid varies rank or steps; so has deltaStartStep (min(500, steps / 10)).
 */
public record LoraParamSet(
    Param<String> modelDir,
    IntParam rank,
    DoubleParam alpha,
    DoubleParam dropout,
    BooleanParam rsLora,
    Param<String> targets,
    Param<String> method,
    DoubleParam learningRate,
    DoubleParam lrRatio,
    IntParam steps,
    IntParam batchSize,
    IntParam gradAccum,
    IntParam warmupSteps,
    Param<String> schedule,
    DoubleParam weightDecay,
    DoubleParam maxGradNorm,
    LongParam seed,
    BooleanParam recomputeActivations,
    Param<String> precision,
    DoubleParam deltaUpdateRatio,
    IntParam deltaStartStep,
    Param<String> inputIdsCol,
    Param<String> labelsCol,
    Param<String> segmentIdsCol,
    Param<String> nllCol,
    Param<String> tokensCol)
    implements Serializable {

  /** All seven projections, the trainer's default targets. */
  public static final String ALL_TARGETS = AdapterSettings.TARGETS.defaultValue();

  private static final Set<String> SCHEDULES = Set.of("constant", "linear", "cosine");

  /** The params of {@code owner}, with their defaults set on it. */
  static LoraParamSet create(Params owner) {
    Rows rows = new Rows(owner);
    return new LoraParamSet(
        rows.column(
            "modelDir", "base Hugging Face checkpoint directory, readable on every executor", null),
        rows.ints(AdapterSettings.RANK, "LoRA rank r"),
        rows.doubles(
            AdapterSettings.ALPHA,
            "lora_alpha; the branch is scaled by alpha / rank (default 2 x rank)"),
        rows.doubles(AdapterSettings.DROPOUT, "LoRA dropout on the branch input while training"),
        rows.bool(AdapterSettings.RSLORA, "scale by alpha / sqrt(rank) (rsLoRA)"),
        rows.targets(),
        rows.method(),
        rows.doubles(AdapterSettings.LR, "peak AdamW learning rate of A"),
        rows.doubles(
            AdapterSettings.LR_RATIO,
            "LoRA+ ratio: B learns at learningRate x lrRatio (1 = plain LoRA)"),
        rows.ints(AdapterSettings.STEPS, "optimizer steps"),
        rows.ints(AdapterSettings.BATCH_SIZE, "rows per micro-batch"),
        rows.ints(AdapterSettings.GRAD_ACCUM, "micro-batches per optimizer step"),
        rows.ints(
            AdapterSettings.WARMUP_STEPS,
            "linear warmup steps, at most steps (default 10% of steps)"),
        rows.strings(
            AdapterSettings.SCHEDULE,
            "learning-rate decay after warmup: constant|linear|cosine",
            SCHEDULES::contains,
            "one of " + SCHEDULES),
        rows.doubles(AdapterSettings.WEIGHT_DECAY, "AdamW decoupled weight decay"),
        rows.doubles(AdapterSettings.MAX_GRAD_NORM, "global gradient-norm clip, 0 for none"),
        rows.seed(AdapterSettings.SEED, "seed of the adapter's init, data order and dropout"),
        rows.flag(
            "recomputeActivations",
            "keep one layer's activations and recompute each layer's during backward: the"
                + " same gradients for about one more forward pass, for long sequences"),
        rows.precision(),
        rows.doubles(
            AdapterSettings.DELTA_UPDATE_RATIO, AdapterSettings.DELTA_UPDATE_RATIO.meaning()),
        rows.ints(
            AdapterSettings.DELTA_START_STEP,
            AdapterSettings.DELTA_START_STEP.meaning()
                + " (default "
                + AdapterSettings.DELTA_START_STEP.derived()
                + ")"),
        rows.column("inputIdsCol", "token-id column, array<int>", ShardReader.INPUT_IDS),
        rows.column(
            "labelsCol",
            "label column aligned with the ids, array<int>, -100 where not scored",
            ShardReader.LABELS),
        rows.column(
            "segmentIdsCol",
            "packed-example index per token, array<int>; used when the column exists",
            ShardReader.SEGMENT_IDS),
        rows.column(
            "nllCol",
            "output column: summed next-token NLL of the row's scored tokens (nats)",
            "nll"),
        rows.column("tokensCol", "output column: number of scored tokens of the row", "tokens"));
  }

  /**
   * Builds one owner's params from the rows of {@link AdapterSettings}: each param takes its row's
   * Spark ML name, range check and default (none when the row's default is derived).
   */
  private record Rows(Params owner) {
    IntParam ints(AdapterSettings.Setting<Integer> s, String doc) {
      return withDefault(
          new IntParam(owner, s.mlParam(), doc, ParamChecks.range(s.mlParam(), s.range())), s);
    }

    DoubleParam doubles(AdapterSettings.Setting<Double> s, String doc) {
      return withDefault(
          new DoubleParam(owner, s.mlParam(), doc, ParamChecks.range(s.mlParam(), s.range())), s);
    }

    BooleanParam bool(AdapterSettings.Setting<Boolean> s, String doc) {
      return withDefault(new BooleanParam(owner, s.mlParam(), doc), s);
    }

    LongParam seed(AdapterSettings.Setting<Long> s, String doc) {
      return withDefault(new LongParam(owner, s.mlParam(), doc), s);
    }

    Param<String> strings(
        AdapterSettings.Setting<String> s,
        String doc,
        ParamChecks.Rule<String> rule,
        String valid) {
      return withDefault(
          new Param<>(owner, s.mlParam(), doc, ParamChecks.strings(s.mlParam(), rule, valid)), s);
    }

    /** A column-name param, with {@code dflt} as its default unless null. */
    Param<String> column(String name, String doc, String dflt) {
      Param<String> p = new Param<>(owner, name, doc, ParamChecks.column(name));
      if (dflt != null) {
        owner.setDefault(p, dflt);
      }
      return p;
    }

    Param<String> targets() {
      return strings(
          AdapterSettings.TARGETS,
          "comma-separated projections that carry the adapter: q,k,v,o,gate,up,down",
          LoraParamSet::validTargets,
          "a comma-separated subset of " + ALL_TARGETS);
    }

    Param<String> method() {
      return strings(
          AdapterSettings.METHOD,
          "adapter method: " + String.join(", ", LoraMethod.keys()),
          LoraParamSet::validMethod,
          "one of " + String.join(", ", LoraMethod.keys()));
    }

    BooleanParam flag(String name, String doc) {
      BooleanParam p = new BooleanParam(owner, name, doc);
      owner.setDefault(p, false);
      return p;
    }

    Param<String> precision() {
      Param<String> p =
          new Param<>(
              owner,
              "precision",
              "the GEMMs of the frozen weights and attention: fp32, bf16 (oneDNN, f32"
                  + " accumulation) or auto"
                  + " (bf16 on an executor whose CPU has AMX, else fp32)",
              ParamChecks.strings("precision", LoraParamSet::validPrecision, "fp32, bf16 or auto"));
      owner.setDefault(p, Precision.DEFAULT.key());
      return p;
    }

    @SuppressWarnings("unchecked")
    private <P extends Param<?>, T> P withDefault(P param, AdapterSettings.Setting<T> s) {
      s.fixedDefault().ifPresent(d -> owner.setDefault((Param<Object>) param, d));
      return param;
    }
  }

  private static boolean validPrecision(String name) {
    try {
      Precision.parse(name);
      return true;
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  private static boolean validMethod(String name) {
    try {
      LoraMethod.parse(name);
      return true;
    } catch (IllegalArgumentException e) {
      return false; // reported by the param check with the valid names
    }
  }

  private static boolean validTargets(String csv) {
    try {
      Projection.parseList(csv);
      return true;
    } catch (IllegalArgumentException e) {
      return false; // reported by the param check with the valid names
    }
  }
}
