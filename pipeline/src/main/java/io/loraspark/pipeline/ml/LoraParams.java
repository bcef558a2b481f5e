package io.loraspark.pipeline.ml;

import io.loraspark.train.loop.TrainConfig;
import io.loraspark.train.lora.DeltaLoraParams;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.model.Projection;
import io.loraspark.train.optim.LrSchedule;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.DoubleParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.LongParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.Params;

/**
 * The params {@link LoraEstimator} and the {@link LoraAdapterModel} it fits share (Spark's {@code
 * copyValues} carries them from one to the other by name), with typed getters. Spark finds params
 * by reflection on public no-argument methods returning a {@link Param}: the accessors below,
 * backed by the owner's {@link LoraParamSet}.
 */
public interface LoraParams extends Params {

  /** The owner's param objects. */
  LoraParamSet loraParams();

  // One accessor per param (found by Spark's reflection); the meanings are in LoraParamSet.

  default Param<String> modelDir() {
    return loraParams().modelDir();
  }

  default IntParam rank() {
    return loraParams().rank();
  }

  default DoubleParam alpha() {
    return loraParams().alpha();
  }

  default DoubleParam dropout() {
    return loraParams().dropout();
  }

  default BooleanParam rsLora() {
    return loraParams().rsLora();
  }

  default Param<String> targets() {
    return loraParams().targets();
  }

  default Param<String> method() {
    return loraParams().method();
  }

  default DoubleParam learningRate() {
    return loraParams().learningRate();
  }

  default DoubleParam lrRatio() {
    return loraParams().lrRatio();
  }

  default IntParam steps() {
    return loraParams().steps();
  }

  default IntParam batchSize() {
    return loraParams().batchSize();
  }

  default IntParam gradAccum() {
    return loraParams().gradAccum();
  }

  default IntParam warmupSteps() {
    return loraParams().warmupSteps();
  }

  default Param<String> schedule() {
    return loraParams().schedule();
  }

  default DoubleParam weightDecay() {
    return loraParams().weightDecay();
  }

  default DoubleParam maxGradNorm() {
    return loraParams().maxGradNorm();
  }

  default LongParam seed() {
    return loraParams().seed();
  }

  default BooleanParam recomputeActivations() {
    return loraParams().recomputeActivations();
  }

  default Param<String> precision() {
    return loraParams().precision();
  }

  default Param<String> inputIdsCol() {
    return loraParams().inputIdsCol();
  }

  default Param<String> labelsCol() {
    return loraParams().labelsCol();
  }

  default Param<String> segmentIdsCol() {
    return loraParams().segmentIdsCol();
  }

  default Param<String> nllCol() {
    return loraParams().nllCol();
  }

  default Param<String> tokensCol() {
    return loraParams().tokensCol();
  }

  // Typed getters (an IntParam is a Param<Object> seen from Java).

  /**
   * @throws IllegalArgumentException when modelDir was never set
   */
  default String getModelDir() {
    if (!isDefined(modelDir())) {
      throw new IllegalArgumentException(
          "modelDir is not set: call setModelDir(<Hugging Face checkpoint directory>)");
    }
    return $(modelDir());
  }

  default int getRank() {
    return (Integer) $(rank());
  }

  /** The set alpha, else 2 × rank (the trainer's default). */
  default double getAlpha() {
    return isDefined(alpha()) ? (Double) $(alpha()) : 2.0 * getRank();
  }

  default double getDropout() {
    return (Double) $(dropout());
  }

  default boolean getRsLora() {
    return (Boolean) $(rsLora());
  }

  default String getTargets() {
    return $(targets());
  }

  default double getLearningRate() {
    return (Double) $(learningRate());
  }

  default double getLrRatio() {
    return (Double) $(lrRatio());
  }

  default int getSteps() {
    return (Integer) $(steps());
  }

  default int getBatchSize() {
    return (Integer) $(batchSize());
  }

  default int getGradAccum() {
    return (Integer) $(gradAccum());
  }

  /** The set warmupSteps, else 10% of steps (the trainer's default). */
  default int getWarmupSteps() {
    return isDefined(warmupSteps()) ? (Integer) $(warmupSteps()) : getSteps() / 10;
  }

  default String getMethod() {
    return $(method());
  }

  default String getSchedule() {
    return $(schedule());
  }

  default double getWeightDecay() {
    return (Double) $(weightDecay());
  }

  default double getMaxGradNorm() {
    return (Double) $(maxGradNorm());
  }

  default long getSeed() {
    return (Long) $(seed());
  }

  default boolean getRecomputeActivations() {
    return (Boolean) $(recomputeActivations());
  }

  default String getPrecision() {
    return $(precision());
  }

  default DoubleParam deltaUpdateRatio() {
    return loraParams().deltaUpdateRatio();
  }

  default IntParam deltaStartStep() {
    return loraParams().deltaStartStep();
  }

  default double getDeltaUpdateRatio() {
    return (Double) $(deltaUpdateRatio());
  }

  /** K, or null when unset (then min(500, steps / 10)). */
  default Integer getDeltaStartStep() {
    return isDefined(deltaStartStep()) ? (Integer) $(deltaStartStep()) : null;
  }

  default String getInputIdsCol() {
    return $(inputIdsCol());
  }

  default String getLabelsCol() {
    return $(labelsCol());
  }

  default String getSegmentIdsCol() {
    return $(segmentIdsCol());
  }

  default String getNllCol() {
    return $(nllCol());
  }

  default String getTokensCol() {
    return $(tokensCol());
  }

  /**
   * The adapter's shape from these params; for delta-lora with its λ and K (other methods ignore
   * them, as sweeps do).
   */
  default LoraConfig loraConfig() {
    LoraMethod method = LoraMethod.parse(getMethod());
    LoraConfig config =
        new LoraConfig(
            getRank(),
            getAlpha(),
            getDropout(),
            Projection.parseList(getTargets()),
            getRsLora(),
            method);
    if (method != LoraMethod.DELTA_LORA) {
      return config;
    }
    return config.withDeltaLora(
        DeltaLoraParams.of(getDeltaUpdateRatio(), getDeltaStartStep()).resolved(getSteps()));
  }

  /**
   * How the adapter is trained, from these params.
   *
   * @throws IllegalArgumentException when warmupSteps exceeds steps
   */
  default TrainConfig trainConfig() {
    if (getWarmupSteps() > getSteps()) {
      throw new IllegalArgumentException(
          "Cannot set warmupSteps to "
              + getWarmupSteps()
              + ": must be an integer in [0, steps="
              + getSteps()
              + "]");
    }
    return new TrainConfig(
        getSteps(),
        getBatchSize(),
        getGradAccum(),
        getLearningRate(),
        getLrRatio(),
        getWeightDecay(),
        getWarmupSteps(),
        LrSchedule.Kind.parse(getSchedule()),
        getMaxGradNorm(),
        0,
        getSeed());
  }
}
