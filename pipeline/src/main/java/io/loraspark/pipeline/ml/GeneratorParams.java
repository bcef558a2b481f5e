package io.loraspark.pipeline.ml;

import org.apache.spark.ml.param.DoubleParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.LongParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.Params;
import org.apache.spark.ml.param.StringArrayParam;

/**
 * {@link LoraGenerator}'s params with typed getters. Spark finds params by reflection on public
 * no-argument methods returning a {@link Param}: the accessors below, backed by the owner's {@link
 * GeneratorParamSet}.
 */
public interface GeneratorParams extends Params {

  /** The owner's param objects. */
  GeneratorParamSet generatorParams();

  // One accessor per param (found by Spark's reflection); the meanings are in GeneratorParamSet.

  default Param<String> modelPath() {
    return generatorParams().modelPath();
  }

  default Param<String> promptCol() {
    return generatorParams().promptCol();
  }

  default Param<String> adapterCol() {
    return generatorParams().adapterCol();
  }

  default Param<String> adapterRoot() {
    return generatorParams().adapterRoot();
  }

  default Param<String> outputCol() {
    return generatorParams().outputCol();
  }

  default IntParam maxNewTokens() {
    return generatorParams().maxNewTokens();
  }

  default DoubleParam temperature() {
    return generatorParams().temperature();
  }

  default IntParam topK() {
    return generatorParams().topK();
  }

  default DoubleParam topP() {
    return generatorParams().topP();
  }

  default LongParam seed() {
    return generatorParams().seed();
  }

  default StringArrayParam stopStrings() {
    return generatorParams().stopStrings();
  }

  default LongParam adapterCacheBytes() {
    return generatorParams().adapterCacheBytes();
  }

  default IntParam maxBatchRows() {
    return generatorParams().maxBatchRows();
  }

  /**
   * @throws IllegalArgumentException when modelPath was never set
   */
  default String getModelPath() {
    if (!isDefined(modelPath())) {
      throw new IllegalArgumentException(
          "modelPath is not set: call setModelPath(<Hugging Face checkpoint directory>)");
    }
    return $(modelPath());
  }

  default String getPromptCol() {
    return $(promptCol());
  }

  /** The adapter column, or null when unset (every row uses the base). */
  default String getAdapterCol() {
    return isDefined(adapterCol()) ? $(adapterCol()) : null;
  }

  /** The adapter root, or null when unset. */
  default String getAdapterRoot() {
    return isDefined(adapterRoot()) ? $(adapterRoot()) : null;
  }

  default String getOutputCol() {
    return $(outputCol());
  }

  default int getMaxNewTokens() {
    return (Integer) $(maxNewTokens());
  }

  default double getTemperature() {
    return (Double) $(temperature());
  }

  default int getTopK() {
    return (Integer) $(topK());
  }

  default double getTopP() {
    return (Double) $(topP());
  }

  default long getSeed() {
    return (Long) $(seed());
  }

  default String[] getStopStrings() {
    return $(stopStrings()).clone();
  }

  default long getAdapterCacheBytes() {
    return (Long) $(adapterCacheBytes());
  }

  default int getMaxBatchRows() {
    return (Integer) $(maxBatchRows());
  }
}
