package io.loraspark.pipeline.ml;

import io.loraspark.pipeline.spark.Sessions;
import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.precision.Precision;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.SparkException;
import org.apache.spark.ml.Estimator;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.util.DefaultParamsReadable;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.Identifiable$;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.StructType;

/**
 * The LoRA trainer as a Spark ML {@link Estimator}: {@code fit} trains one adapter on the token
 * rows of a dataset (the {@code input_ids}/{@code labels}[/{@code segment_ids}] columns that
 * preprocess shards and {@code InstructionTokenizer} produce) and returns it as a {@link
 * LoraAdapterModel}. Params and their defaults are those of {@code lora-pipeline train} (see {@link
 * LoraParamSet}), so {@code ParamGridBuilder} over {@code rank()} and {@code lrRatio()} with {@code
 * TrainValidationSplit} or {@code CrossValidator} is a sweep.
 *
 * <p>Training runs in one Spark task: the rows are repartitioned to a single partition, and the
 * task trains on the executor's cached base model ({@code BaseModelCache}, loaded once per executor
 * JVM) and sends back only the adapter's A and B. Every row is a training row (filter a {@code
 * split} column yourself); rows whose ids are null (rejected by the tokenizer) are skipped. A fit
 * that diverges returns the adapter of its last good step with {@code summary().status()} FAILED
 * rather than failing a whole grid. The model directory must be readable on the executors, as in a
 * sweep.
 *
 * <p>Persistence: {@link DefaultParamsWritable} and {@link #load} store the params as JSON
 * metadata.
 */
public final class LoraEstimator extends Estimator<LoraAdapterModel>
    implements LoraParams, DefaultParamsWritable {
  private static final long serialVersionUID = 1L;

  private final String uid;
  private final LoraParamSet params;

  /** An estimator with a random uid and the trainer's defaults. */
  public LoraEstimator() {
    this(Identifiable$.MODULE$.randomUID("loraEstimator"));
  }

  /**
   * An estimator with the given uid (used by {@link #copy} and {@link #load}).
   *
   * @param uid the ML uid
   */
  public LoraEstimator(String uid) {
    this.uid = uid;
    this.params = LoraParamSet.create(this);
  }

  @Override
  public String uid() {
    return uid;
  }

  @Override
  public LoraParamSet loraParams() {
    return params;
  }

  /**
   * Trains one adapter on every usable row of {@code dataset}.
   *
   * @throws IllegalArgumentException naming the param, column or model file when the params, the
   *     schema or the checkpoint are unusable, or when no row has ids
   */
  @Override
  public LoraAdapterModel fit(Dataset<?> dataset) {
    transformSchema(dataset.schema());
    String baseConfig = baseConfigJson(Path.of(getModelDir()));
    AdapterSpec spec = new AdapterSpec(uid, loraConfig(), trainConfig());
    Dataset<Row> tokens = TokenColumns.select(dataset.toDF(), this);
    TokenColumns columns = TokenColumns.resolve(tokens.schema(), this);
    int threads = Sessions.threadsPerTask(dataset.sparkSession());
    List<TrainOnPartition.Result> results;
    try {
      results =
          tokens
              .repartition(1)
              .toJavaRDD()
              .mapPartitions(
                  new TrainOnPartition(
                      getModelDir(),
                      spec,
                      columns,
                      threads,
                      getRecomputeActivations(),
                      Precision.parse(getPrecision())))
              .collect();
    } catch (Exception e) { // a failed job is a SparkException, which Scala does not declare
      throw unwrapped(e);
    }
    TrainOnPartition.Result r = results.get(0);
    LoraAdapterModel model = new LoraAdapterModel(uid, r.adapter(), r.summary(), baseConfig);
    return copyValues(model, ParamMap.empty()).setParent(this);
  }

  /**
   * The text of {@code modelDir/config.json}, after checking that it is a supported checkpoint
   * config, so a wrong directory fails before any Spark job.
   */
  private static String baseConfigJson(Path modelDir) {
    ModelConfig.load(modelDir);
    Path file = modelDir.resolve("config.json");
    try {
      return Files.readString(file);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
    }
  }

  /**
   * A task's bad-input error as itself (one clear line for the caller); other failures unchanged.
   */
  private static RuntimeException unwrapped(Exception e) {
    if (e instanceof SparkException && e.getCause() instanceof IllegalArgumentException bad) {
      return new IllegalArgumentException(bad.getMessage(), e);
    }
    return e instanceof RuntimeException r
        ? r
        : new IllegalStateException("the training job failed: " + e.getMessage(), e);
  }

  /**
   * The schema the fitted model's {@code transform} produces: the input plus {@code nll} (double)
   * and {@code tokens} (long).
   *
   * @throws IllegalArgumentException naming the column when an input column is missing or not
   *     array&lt;int&gt;, or an output column already exists; naming the param when the params do
   *     not fit together (warmupSteps > steps)
   */
  @Override
  public StructType transformSchema(StructType schema) {
    loraConfig(); // params valid as a set (warmupSteps <= steps), before any work
    trainConfig();
    return LoraAdapterModel.outputSchema(schema, this);
  }

  @Override
  public LoraEstimator copy(ParamMap extra) {
    return defaultCopy(extra);
  }

  // Setters, chainable; the meanings are in LoraParamSet.

  public LoraEstimator setModelDir(String v) {
    set(modelDir(), v);
    return this;
  }

  public LoraEstimator setRank(int v) {
    set(rank(), v);
    return this;
  }

  public LoraEstimator setAlpha(double v) {
    set(alpha(), v);
    return this;
  }

  public LoraEstimator setDropout(double v) {
    set(dropout(), v);
    return this;
  }

  public LoraEstimator setRsLora(boolean v) {
    set(rsLora(), v);
    return this;
  }

  public LoraEstimator setRecomputeActivations(boolean v) {
    set(recomputeActivations(), v);
    return this;
  }

  /** fp32, bf16 or auto (the default): see {@link io.loraspark.train.model.precision.Precision}. */
  public LoraEstimator setPrecision(String v) {
    set(precision(), v);
    return this;
  }

  /** Delta-LoRA's λ (method delta-lora only). */
  public LoraEstimator setDeltaUpdateRatio(double v) {
    set(deltaUpdateRatio(), v);
    return this;
  }

  /** Delta-LoRA's K (method delta-lora only). */
  public LoraEstimator setDeltaStartStep(int v) {
    set(deltaStartStep(), v);
    return this;
  }

  public LoraEstimator setTargets(String v) {
    set(targets(), v);
    return this;
  }

  /** The adapter method: lora, lora-fa, dora, pissa, vera, adalora or delta-lora. */
  public LoraEstimator setMethod(String v) {
    set(method(), v);
    return this;
  }

  public LoraEstimator setLearningRate(double v) {
    set(learningRate(), v);
    return this;
  }

  public LoraEstimator setLrRatio(double v) {
    set(lrRatio(), v);
    return this;
  }

  public LoraEstimator setSteps(int v) {
    set(steps(), v);
    return this;
  }

  public LoraEstimator setBatchSize(int v) {
    set(batchSize(), v);
    return this;
  }

  public LoraEstimator setGradAccum(int v) {
    set(gradAccum(), v);
    return this;
  }

  public LoraEstimator setWarmupSteps(int v) {
    set(warmupSteps(), v);
    return this;
  }

  public LoraEstimator setSchedule(String v) {
    set(schedule(), v);
    return this;
  }

  public LoraEstimator setWeightDecay(double v) {
    set(weightDecay(), v);
    return this;
  }

  public LoraEstimator setMaxGradNorm(double v) {
    set(maxGradNorm(), v);
    return this;
  }

  public LoraEstimator setSeed(long v) {
    set(seed(), v);
    return this;
  }

  public LoraEstimator setInputIdsCol(String v) {
    set(inputIdsCol(), v);
    return this;
  }

  public LoraEstimator setLabelsCol(String v) {
    set(labelsCol(), v);
    return this;
  }

  public LoraEstimator setSegmentIdsCol(String v) {
    set(segmentIdsCol(), v);
    return this;
  }

  public LoraEstimator setNllCol(String v) {
    set(nllCol(), v);
    return this;
  }

  public LoraEstimator setTokensCol(String v) {
    set(tokensCol(), v);
    return this;
  }

  /** The reader used by {@link #load} and by {@code Pipeline} persistence. */
  public static MLReader<LoraEstimator> read() {
    return new Reader().read();
  }

  /**
   * Loads an estimator saved with {@code write().save(path)}.
   *
   * @param path the directory it was saved to
   */
  public static LoraEstimator load(String path) {
    return read().load(path);
  }

  /** Spark's default params reader, reached through its Scala trait. */
  private static final class Reader implements DefaultParamsReadable<LoraEstimator> {}
}
