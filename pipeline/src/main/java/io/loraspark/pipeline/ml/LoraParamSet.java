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
    LoraParamSet p =
        new LoraParamSet(
            new Param<>(
                owner,
                "modelDir",
                "base Hugging Face checkpoint directory, readable on every executor",
                ParamChecks.column("modelDir")),
            new IntParam(owner, "rank", "LoRA rank r", ParamChecks.ints("rank", 1, 4096)),
            new DoubleParam(
                owner,
                "alpha",
                "lora_alpha; the branch is scaled by alpha / rank (default 2 x rank)",
                ParamChecks.doubles("alpha", v -> v > 0, "> 0")),
            new DoubleParam(
                owner,
                "dropout",
                "LoRA dropout on the branch input while training",
                ParamChecks.doubles("dropout", v -> v >= 0 && v < 1, "in [0, 1)")),
            new BooleanParam(owner, "rsLora", "scale by alpha / sqrt(rank) (rsLoRA)"),
            new Param<>(
                owner,
                "targets",
                "comma-separated projections that carry the adapter: q,k,v,o,gate,up,down",
                ParamChecks.strings(
                    "targets",
                    LoraParamSet::validTargets,
                    "a comma-separated subset of " + ALL_TARGETS)),
            new Param<>(
                owner,
                "method",
                "adapter method: " + String.join(", ", LoraMethod.keys()),
                ParamChecks.strings(
                    "method",
                    LoraParamSet::validMethod,
                    "one of " + String.join(", ", LoraMethod.keys()))),
            new DoubleParam(
                owner,
                "learningRate",
                "peak AdamW learning rate of A",
                ParamChecks.doubles("learningRate", v -> v > 0, "> 0")),
            new DoubleParam(
                owner,
                "lrRatio",
                "LoRA+ ratio: B learns at learningRate x lrRatio (1 = plain LoRA)",
                ParamChecks.doubles("lrRatio", v -> v > 0, "> 0")),
            new IntParam(
                owner, "steps", "optimizer steps", ParamChecks.ints("steps", 1, Integer.MAX_VALUE)),
            new IntParam(
                owner,
                "batchSize",
                "rows per micro-batch",
                ParamChecks.ints("batchSize", 1, Integer.MAX_VALUE)),
            new IntParam(
                owner,
                "gradAccum",
                "micro-batches per optimizer step",
                ParamChecks.ints("gradAccum", 1, Integer.MAX_VALUE)),
            new IntParam(
                owner,
                "warmupSteps",
                "linear warmup steps, at most steps (default 10% of steps)",
                ParamChecks.ints("warmupSteps", 0, Integer.MAX_VALUE)),
            new Param<>(
                owner,
                "schedule",
                "learning-rate decay after warmup: constant|linear|cosine",
                ParamChecks.strings("schedule", SCHEDULES::contains, "one of " + SCHEDULES)),
            new DoubleParam(
                owner,
                "weightDecay",
                "AdamW decoupled weight decay",
                ParamChecks.doubles("weightDecay", v -> v >= 0, ">= 0")),
            new DoubleParam(
                owner,
                "maxGradNorm",
                "global gradient-norm clip, 0 for none",
                ParamChecks.doubles("maxGradNorm", v -> v >= 0, ">= 0")),
            new LongParam(owner, "seed", "seed of the adapter's init, data order and dropout"),
            new BooleanParam(
                owner,
                "recomputeActivations",
                "keep one layer's activations and recompute each layer's during backward: the"
                    + " same gradients for about one more forward pass, for long sequences"),
            new Param<>(
                owner,
                "precision",
                "the frozen projections' GEMMs: fp32, bf16 (oneDNN, f32 accumulation) or auto"
                    + " (bf16 on an executor whose CPU has AMX, else fp32)",
                ParamChecks.strings(
                    "precision", LoraParamSet::validPrecision, "fp32, bf16 or auto")),
            new DoubleParam(
                owner,
                "deltaUpdateRatio",
                AdapterSettings.DELTA_UPDATE_RATIO.meaning(),
                ParamChecks.doubles("deltaUpdateRatio", v -> v >= 0, ">= 0")),
            new IntParam(
                owner,
                "deltaStartStep",
                AdapterSettings.DELTA_START_STEP.meaning()
                    + " (default "
                    + AdapterSettings.DELTA_START_STEP.derived()
                    + ")",
                ParamChecks.ints("deltaStartStep", 0, Integer.MAX_VALUE)),
            new Param<>(
                owner,
                "inputIdsCol",
                "token-id column, array<int>",
                ParamChecks.column("inputIdsCol")),
            new Param<>(
                owner,
                "labelsCol",
                "label column aligned with the ids, array<int>, -100 where not scored",
                ParamChecks.column("labelsCol")),
            new Param<>(
                owner,
                "segmentIdsCol",
                "packed-example index per token, array<int>; used when the column exists",
                ParamChecks.column("segmentIdsCol")),
            new Param<>(
                owner,
                "nllCol",
                "output column: summed next-token NLL of the row's scored tokens (nats)",
                ParamChecks.column("nllCol")),
            new Param<>(
                owner,
                "tokensCol",
                "output column: number of scored tokens of the row",
                ParamChecks.column("tokensCol")));
    p.setDefaults(owner);
    return p;
  }

  private void setDefaults(Params owner) {
    owner.setDefault(rank, AdapterSettings.RANK.defaultValue());
    owner.setDefault(dropout, AdapterSettings.DROPOUT.defaultValue());
    owner.setDefault(rsLora, AdapterSettings.RSLORA.defaultValue());
    owner.setDefault(targets, AdapterSettings.TARGETS.defaultValue());
    owner.setDefault(method, AdapterSettings.METHOD.defaultValue());
    owner.setDefault(learningRate, AdapterSettings.LR.defaultValue());
    owner.setDefault(lrRatio, AdapterSettings.LR_RATIO.defaultValue());
    owner.setDefault(steps, AdapterSettings.STEPS.defaultValue());
    owner.setDefault(batchSize, AdapterSettings.BATCH_SIZE.defaultValue());
    owner.setDefault(gradAccum, AdapterSettings.GRAD_ACCUM.defaultValue());
    owner.setDefault(schedule, AdapterSettings.SCHEDULE.defaultValue());
    owner.setDefault(weightDecay, AdapterSettings.WEIGHT_DECAY.defaultValue());
    owner.setDefault(maxGradNorm, AdapterSettings.MAX_GRAD_NORM.defaultValue());
    owner.setDefault(seed, AdapterSettings.SEED.defaultValue());
    owner.setDefault(recomputeActivations, false);
    owner.setDefault(precision, Precision.DEFAULT.key());
    owner.setDefault(deltaUpdateRatio, AdapterSettings.DELTA_UPDATE_RATIO.defaultValue());
    owner.setDefault(inputIdsCol, ShardReader.INPUT_IDS);
    owner.setDefault(labelsCol, ShardReader.LABELS);
    owner.setDefault(segmentIdsCol, ShardReader.SEGMENT_IDS);
    owner.setDefault(nllCol, "nll");
    owner.setDefault(tokensCol, "tokens");
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
