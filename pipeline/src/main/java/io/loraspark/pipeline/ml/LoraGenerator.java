package io.loraspark.pipeline.ml;

import io.loraspark.pipeline.spark.Sessions;
import io.loraspark.train.cache.AdapterSource;
import io.loraspark.train.model.ModelConfig;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.util.DefaultParamsReadable;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.Identifiable$;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Text generation as a Spark ML {@link Transformer}: {@code transform} appends to each row the text
 * the base checkpoint (plus the row's adapter, if any) generates after the row's prompt, decoded in
 * the executors with the KV-cached {@code DecodeEngine}. Rows of one partition decode together by
 * continuous batching (up to {@code maxBatchRows} requests at once); every row's text is the one it
 * would get alone, since the engine computes each row by the same arithmetic whatever shares its
 * step. Rows come out in input order; a row whose prompt is null gets a null text.
 *
 * <p>Per executor JVM the base model is loaded once ({@code BaseModelCache}) and adapters are held
 * in one RAM cache per (checkpoint, adapter root, budget) ({@code AdapterRegistry}, LRU within
 * {@code adapterCacheBytes}); per partition there is one engine and one tokenizer. Both directories
 * must be readable at the same path on the driver and on every executor.
 *
 * <p>Sampling: greedy when {@code temperature} is 0 (the default), else temperature / top-k / top-p
 * sampling as Hugging Face's {@code generate}. A row's seed is {@link #rowSeed(long, String)}
 * {@code (seed, prompt)}: it depends on the prompt text only, not on the row's position, so a
 * rerun, a retried task or another partitioning gives the same texts.
 *
 * <p>Bad input fails the job with the engine's one-line message: an adapter name that does not
 * resolve under {@code adapterRoot}, a prompt longer than the model's context, an empty stop
 * string. Persistence: {@link DefaultParamsWritable} and {@link #load} store the params as JSON.
 */
public final class LoraGenerator extends Transformer
    implements GeneratorParams, DefaultParamsWritable {
  private static final long serialVersionUID = 1L;

  public static final String PROMPT_COL_DEFAULT = "prompt";
  public static final String OUTPUT_COL_DEFAULT = "generated";
  public static final int MAX_NEW_TOKENS_DEFAULT = 64;
  public static final long ADAPTER_CACHE_BYTES_DEFAULT = 1L << 30;
  public static final int MAX_BATCH_ROWS_DEFAULT = 64;

  private final String uid;
  private final GeneratorParamSet params;

  /** A generator with a random uid and the defaults. */
  public LoraGenerator() {
    this(Identifiable$.MODULE$.randomUID("loraGenerator"));
  }

  /**
   * A generator with the given uid (used by {@link #copy} and {@link #load}).
   *
   * @param uid the ML uid
   */
  public LoraGenerator(String uid) {
    this.uid = uid;
    this.params = GeneratorParamSet.create(this);
  }

  @Override
  public GeneratorParamSet generatorParams() {
    return params;
  }

  @Override
  public String uid() {
    return uid;
  }

  /**
   * {@code dataset} with the generated-text column appended (lazily: the texts are generated when
   * an action runs).
   *
   * @throws IllegalArgumentException naming the param, column or file when the params or schema are
   *     unusable or {@code modelPath} holds no supported checkpoint; bad rows fail the action with
   *     the engine's message
   */
  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    StructType out = transformSchema(dataset.schema());
    ModelConfig.load(Path.of(getModelPath())); // a wrong directory fails here, not in a task
    String root = adapterColSet() ? getAdapterRoot() : null;
    if (root != null) {
      AdapterSource.namesUnder(Path.of(root)); // the root must be a directory
    }
    StructType in = dataset.schema();
    GenerateOnPartition.Settings s =
        new GenerateOnPartition.Settings(
            getModelPath(),
            root,
            in.fieldIndex(getPromptCol()),
            root != null ? in.fieldIndex(getAdapterCol()) : -1,
            getMaxNewTokens(),
            getTemperature(),
            getTopK(),
            getTopP(),
            getSeed(),
            List.of(getStopStrings()),
            getAdapterCacheBytes(),
            getMaxBatchRows(),
            Sessions.threadsPerTask(dataset.sparkSession()));
    return dataset.toDF().mapPartitions(new GenerateOnPartition(s), Encoders.row(out));
  }

  /**
   * {@code schema} plus {@code outputCol} (string, nullable).
   *
   * @throws IllegalArgumentException when modelPath is unset, the prompt or adapter column is
   *     missing or not a string, adapterCol is set without adapterRoot, or {@code "Output column X
   *     already exists."}
   */
  @Override
  public StructType transformSchema(StructType schema) {
    getModelPath();
    requireString(schema, getPromptCol(), "promptCol");
    if (adapterColSet()) {
      requireString(schema, getAdapterCol(), "adapterCol");
      if (!isDefined(adapterRoot())) {
        throw new IllegalArgumentException(
            "adapterRoot is not set: it is required when adapterCol is set; call"
                + " setAdapterRoot(<directory the adapter names resolve under>)");
      }
    }
    if (Arrays.asList(schema.fieldNames()).contains(getOutputCol())) {
      throw new IllegalArgumentException("Output column " + getOutputCol() + " already exists.");
    }
    return schema.add(getOutputCol(), DataTypes.StringType, true);
  }

  private static void requireString(StructType schema, String column, String param) {
    DataType t = TokenColumns.typeOf(schema, column, param);
    if (!t.equals(DataTypes.StringType)) {
      throw new IllegalArgumentException(
          "Column " + column + " must be string but was " + t.simpleString());
    }
  }

  /**
   * The seed of a row with {@code prompt}: SplitMix64's finaliser over {@code seed} and the FNV-1a
   * 64-bit hash of the prompt's UTF-8 bytes. It does not depend on the row's position, so it is
   * stable under repartitioning; equal prompts get equal seeds (whatever their adapters).
   */
  public static long rowSeed(long seed, String prompt) {
    long h = 0xCBF29CE484222325L; // FNV-1a offset basis
    for (byte b : prompt.getBytes(StandardCharsets.UTF_8)) {
      h = (h ^ (b & 0xFF)) * 0x100000001B3L;
    }
    long z = seed + 0x9E3779B97F4A7C15L * (h | 1);
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  @Override
  public LoraGenerator copy(ParamMap extra) {
    return defaultCopy(extra);
  }

  private boolean adapterColSet() {
    return isDefined(adapterCol());
  }

  // Chainable setters; the param accessors and typed getters are GeneratorParams'.

  public LoraGenerator setModelPath(String v) {
    set(params.modelPath(), v);
    return this;
  }

  public LoraGenerator setPromptCol(String v) {
    set(params.promptCol(), v);
    return this;
  }

  public LoraGenerator setAdapterCol(String v) {
    set(params.adapterCol(), v);
    return this;
  }

  public LoraGenerator setAdapterRoot(String v) {
    set(params.adapterRoot(), v);
    return this;
  }

  public LoraGenerator setOutputCol(String v) {
    set(params.outputCol(), v);
    return this;
  }

  public LoraGenerator setMaxNewTokens(int v) {
    set(params.maxNewTokens(), v);
    return this;
  }

  public LoraGenerator setTemperature(double v) {
    set(params.temperature(), v);
    return this;
  }

  public LoraGenerator setTopK(int v) {
    set(params.topK(), v);
    return this;
  }

  public LoraGenerator setTopP(double v) {
    set(params.topP(), v);
    return this;
  }

  public LoraGenerator setSeed(long v) {
    set(params.seed(), v);
    return this;
  }

  public LoraGenerator setStopStrings(String... v) {
    set(params.stopStrings(), v.clone());
    return this;
  }

  public LoraGenerator setAdapterCacheBytes(long v) {
    set(params.adapterCacheBytes(), v);
    return this;
  }

  public LoraGenerator setMaxBatchRows(int v) {
    set(params.maxBatchRows(), v);
    return this;
  }

  /** The reader used by {@link #load} and by {@code Pipeline} persistence. */
  public static MLReader<LoraGenerator> read() {
    return new Reader().read();
  }

  /**
   * Loads a generator saved with {@code write().save(path)}.
   *
   * @param path the directory it was saved to
   */
  public static LoraGenerator load(String path) {
    return read().load(path);
  }

  /** Spark's default params reader, reached through its Scala trait. */
  private static final class Reader implements DefaultParamsReadable<LoraGenerator> {}
}
