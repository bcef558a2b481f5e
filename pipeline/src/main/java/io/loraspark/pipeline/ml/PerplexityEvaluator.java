package io.loraspark.pipeline.ml;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.sum;

import java.util.Arrays;
import org.apache.spark.ml.evaluation.Evaluator;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.util.DefaultParamsReadable;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.Identifiable$;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Scores the output of {@link LoraAdapterModel#transform} over the whole dataset, token-weighted:
 * {@code perplexity} (default) is exp(Σ nll / Σ tokens), {@code loss} is Σ nll / Σ tokens, the mean
 * next-token cross-entropy in nats that {@code lora-pipeline score} prints. Lower is better for
 * both, so {@code TrainValidationSplit} and {@code CrossValidator} pick the smallest. Rows with
 * null nll (null ids) are left out.
 *
 * <p>Persistence: {@link DefaultParamsWritable} and {@link #load} store the params as JSON
 * metadata.
 */
public final class PerplexityEvaluator extends Evaluator implements DefaultParamsWritable {
  private static final long serialVersionUID = 1L;

  /** exp of the mean NLL per token. */
  public static final String PERPLEXITY = "perplexity";

  /** The mean NLL per token, in nats. */
  public static final String LOSS = "loss";

  private final String uid;
  private final Param<String> metricName;
  private final Param<String> nllCol;
  private final Param<String> tokensCol;

  /** An evaluator with a random uid and default params. */
  public PerplexityEvaluator() {
    this(Identifiable$.MODULE$.randomUID("perplexityEvaluator"));
  }

  /**
   * An evaluator with the given uid (used by {@link #copy} and {@link #load}).
   *
   * @param uid the ML uid
   */
  public PerplexityEvaluator(String uid) {
    this.uid = uid;
    metricName =
        new Param<>(
            this,
            "metricName",
            "perplexity|loss",
            ParamChecks.strings(
                "metricName",
                v -> v.equals(PERPLEXITY) || v.equals(LOSS),
                PERPLEXITY + " or " + LOSS));
    nllCol =
        new Param<>(this, "nllCol", "summed NLL per row, double", ParamChecks.column("nllCol"));
    tokensCol =
        new Param<>(
            this, "tokensCol", "scored tokens per row, long", ParamChecks.column("tokensCol"));
    setDefault(metricName, PERPLEXITY);
    setDefault(nllCol, "nll");
    setDefault(tokensCol, "tokens");
  }

  @Override
  public String uid() {
    return uid;
  }

  // Params are found by reflection (public no-arg methods returning Param), one accessor each.

  public Param<String> metricName() {
    return metricName;
  }

  public Param<String> nllCol() {
    return nllCol;
  }

  public Param<String> tokensCol() {
    return tokensCol;
  }

  public String getMetricName() {
    return $(metricName);
  }

  public String getNllCol() {
    return $(nllCol);
  }

  public String getTokensCol() {
    return $(tokensCol);
  }

  public PerplexityEvaluator setMetricName(String v) {
    set(metricName, v);
    return this;
  }

  public PerplexityEvaluator setNllCol(String v) {
    set(nllCol, v);
    return this;
  }

  public PerplexityEvaluator setTokensCol(String v) {
    set(tokensCol, v);
    return this;
  }

  /**
   * The metric over every row with a non-null nll.
   *
   * @throws IllegalArgumentException naming the column when one is missing or mistyped, or when no
   *     token is scored
   */
  @Override
  public double evaluate(Dataset<?> dataset) {
    StructType schema = dataset.schema();
    require(schema, getNllCol(), DataTypes.DoubleType);
    require(schema, getTokensCol(), DataTypes.LongType);
    Row totals =
        dataset
            .toDF()
            .where(col(getNllCol()).isNotNull().and(col(getTokensCol()).isNotNull()))
            .agg(sum(col(getNllCol())), sum(col(getTokensCol())))
            .first();
    long tokens = totals.isNullAt(1) ? 0 : totals.getLong(1);
    if (tokens == 0) {
      throw new IllegalArgumentException(
          "no scored token in column " + getTokensCol() + " (all labels -100, or no rows?)");
    }
    double loss = totals.getDouble(0) / tokens;
    return getMetricName().equals(LOSS) ? loss : Math.exp(loss);
  }

  private static void require(StructType schema, String column, DataType type) {
    if (!Arrays.asList(schema.fieldNames()).contains(column)) {
      throw new IllegalArgumentException(
          "Column "
              + column
              + " does not exist; columns are "
              + Arrays.toString(schema.fieldNames())
              + " (transform with a LoraAdapterModel first)");
    }
    DataType t = schema.apply(column).dataType();
    if (!t.equals(type)) {
      throw new IllegalArgumentException(
          "Column " + column + " must be " + type.simpleString() + " but was " + t.simpleString());
    }
  }

  /** Lower is better for both perplexity and loss. */
  @Override
  public boolean isLargerBetter() {
    return false;
  }

  @Override
  public PerplexityEvaluator copy(ParamMap extra) {
    return defaultCopy(extra);
  }

  /** The reader used by {@link #load}. */
  public static MLReader<PerplexityEvaluator> read() {
    return new Reader().read();
  }

  /**
   * Loads an evaluator saved with {@code write().save(path)}.
   *
   * @param path the directory it was saved to
   */
  public static PerplexityEvaluator load(String path) {
    return read().load(path);
  }

  /** Spark's default params reader, reached through its Scala trait. */
  private static final class Reader implements DefaultParamsReadable<PerplexityEvaluator> {}
}
