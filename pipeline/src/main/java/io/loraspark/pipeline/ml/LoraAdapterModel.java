package io.loraspark.pipeline.ml;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.pipeline.spark.Sessions;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.ModelConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.ml.Model;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.ml.util.MLWritable;
import org.apache.spark.ml.util.MLWriter;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * A trained LoRA adapter on a frozen base checkpoint, as a Spark ML {@link Model}: {@code
 * transform} appends each row's summed next-token NLL over its scored label tokens ({@code nll},
 * double, nats) and the number of those tokens ({@code tokens}, long), computed in the executors
 * with their cached base model plus this adapter; {@link PerplexityEvaluator} turns them into a
 * perplexity or a loss. Rows whose ids are null get nulls.
 *
 * <p>It holds the adapter's A and B (F32), the params of the estimator that fitted it, the base
 * model's {@code config.json} (its shape) and a {@link TrainingSummary}; it is immutable.
 *
 * <p>Persistence ({@code write().save(path)}, {@link #load}): {@code path/metadata/} holds the
 * params as Spark ML JSON; {@code path/adapter/} is a Hugging Face PEFT adapter directory that
 * {@code lora-pipeline score --adapter}, PEFT and vLLM load; {@code path/model_info/} holds the
 * base model's {@code config.json} and {@code training_summary.json}. Loading restores an identical
 * model (bit-identical A and B) without needing the base checkpoint.
 */
public final class LoraAdapterModel extends Model<LoraAdapterModel>
    implements LoraParams, MLWritable {
  private static final long serialVersionUID = 1L;

  /** Subdirectory of a saved model holding the PEFT adapter. */
  public static final String ADAPTER_DIR = "adapter";

  private static final String INFO_DIR = "model_info";
  private static final String SUMMARY_FILE = "training_summary.json";
  private static final String BASE_CONFIG_FILE = "config.json";
  private static final ObjectMapper JSON = new ObjectMapper();

  private final String uid;
  private final LoraParamSet params;
  private final AdapterTensors adapter;
  private final TrainingSummary summary;
  private final String baseConfigJson;

  /**
   * @param adapter the trained A and B
   * @param summary how they were trained
   * @param baseConfigJson the base model's {@code config.json}, which fixes the adapter's shapes
   */
  LoraAdapterModel(
      String uid, AdapterTensors adapter, TrainingSummary summary, String baseConfigJson) {
    this.uid = uid;
    this.params = LoraParamSet.create(this);
    this.adapter = adapter;
    this.summary = summary;
    this.baseConfigJson = baseConfigJson;
  }

  @Override
  public String uid() {
    return uid;
  }

  @Override
  public LoraParamSet loraParams() {
    return params;
  }

  /** How the adapter was trained. */
  public TrainingSummary summary() {
    return summary;
  }

  /** The base model's shape, from the {@code config.json} the adapter was trained on. */
  public ModelConfig baseConfig() {
    try {
      return ModelConfig.fromJson(JSON.readTree(baseConfigJson));
    } catch (IOException e) {
      throw new UncheckedIOException("the stored base config.json is not JSON", e);
    }
  }

  /**
   * The adapter as engine weights (a copy, F32).
   *
   * @throws IllegalArgumentException for a method whose branch reads the frozen weights (DoRA,
   *     PiSSA): those load only onto the base model ({@code PeftAdapter.load} with its weights)
   */
  public LoraWeights weights() {
    return adapter.toWeights(baseConfig(), DataType.FLOAT);
  }

  /**
   * Writes the adapter as a Hugging Face PEFT directory ({@code adapter_config.json} + {@code
   * adapter_model.safetensors}) at {@code path}, any Hadoop URI.
   *
   * @throws IllegalArgumentException when {@code path} exists and is not an empty directory
   */
  public void saveAdapter(String path) {
    HadoopDirs.write(
        path, SparkSession.active().sparkContext().hadoopConfiguration(), adapter::writeTo);
  }

  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    StructType out = transformSchema(dataset.schema());
    ModelConfig current = ModelConfig.load(Path.of(getModelDir()));
    if (!current.equals(baseConfig())) {
      throw new IllegalArgumentException(
          "modelDir "
              + getModelDir()
              + " holds a model shaped "
              + current
              + " but the adapter was trained on one shaped "
              + baseConfig());
    }
    Broadcast<AdapterTensors> b =
        JavaSparkContext.fromSparkContext(dataset.sparkSession().sparkContext()).broadcast(adapter);
    TokenColumns columns = TokenColumns.resolve(dataset.schema(), this);
    int threads = Sessions.threadsPerTask(dataset.sparkSession());
    return dataset
        .toDF()
        .mapPartitions(new ScoreRows(getModelDir(), b, columns, threads), Encoders.row(out));
  }

  @Override
  public StructType transformSchema(StructType schema) {
    return outputSchema(schema, this);
  }

  /**
   * {@code schema} plus the nll (double) and tokens (long) columns, after checking the token
   * columns.
   *
   * @throws IllegalArgumentException naming the column when an input column is missing or not
   *     array&lt;int&gt;, or an output column already exists
   */
  static StructType outputSchema(StructType schema, LoraParams p) {
    TokenColumns.resolve(schema, p);
    for (String c : new String[] {p.getNllCol(), p.getTokensCol()}) {
      if (Arrays.asList(schema.fieldNames()).contains(c)) {
        throw new IllegalArgumentException("Output column " + c + " already exists.");
      }
    }
    return schema
        .add(p.getNllCol(), DataTypes.DoubleType, true)
        .add(p.getTokensCol(), DataTypes.LongType, true);
  }

  @Override
  public LoraAdapterModel copy(ParamMap extra) {
    LoraAdapterModel m = new LoraAdapterModel(uid, adapter, summary, baseConfigJson);
    return copyValues(m, extra).setParent(parent());
  }

  // Setters for what may differ where the model is used; the meanings are in LoraParamSet.

  public LoraAdapterModel setModelDir(String v) {
    set(modelDir(), v);
    return this;
  }

  public LoraAdapterModel setInputIdsCol(String v) {
    set(inputIdsCol(), v);
    return this;
  }

  public LoraAdapterModel setLabelsCol(String v) {
    set(labelsCol(), v);
    return this;
  }

  public LoraAdapterModel setSegmentIdsCol(String v) {
    set(segmentIdsCol(), v);
    return this;
  }

  public LoraAdapterModel setNllCol(String v) {
    set(nllCol(), v);
    return this;
  }

  public LoraAdapterModel setTokensCol(String v) {
    set(tokensCol(), v);
    return this;
  }

  @Override
  public MLWriter write() {
    return new Writer(this);
  }

  /** The reader used by {@link #load} and by {@code PipelineModel} persistence. */
  public static MLReader<LoraAdapterModel> read() {
    return new Reader();
  }

  /**
   * Loads a model saved with {@code write().save(path)}.
   *
   * @param path the directory it was saved to
   */
  public static LoraAdapterModel load(String path) {
    return read().load(path);
  }

  /** Params metadata, then the PEFT adapter, then the base config and summary. */
  private static final class Writer extends MLWriter {
    private final LoraAdapterModel model;

    Writer(LoraAdapterModel model) {
      this.model = model;
    }

    @Override
    public void saveImpl(String path) {
      org.apache.spark.ml.util.DefaultParamsWriter$.MODULE$.saveMetadata(
          model, path, sparkSession());
      var conf = sc().hadoopConfiguration();
      HadoopDirs.write(path + "/" + ADAPTER_DIR, conf, model.adapter::writeTo);
      HadoopDirs.write(
          path + "/" + INFO_DIR,
          conf,
          dir -> {
            try {
              Files.createDirectories(dir);
              Files.writeString(dir.resolve(BASE_CONFIG_FILE), model.baseConfigJson);
              JSON.writerWithDefaultPrettyPrinter()
                  .writeValue(dir.resolve(SUMMARY_FILE).toFile(), model.summary);
            } catch (IOException e) {
              throw new UncheckedIOException("cannot write " + dir + ": " + e.getMessage(), e);
            }
          });
    }
  }

  /** Reads what {@link Writer} wrote. */
  private static final class Reader extends MLReader<LoraAdapterModel> {
    @Override
    public LoraAdapterModel load(String path) {
      var metadata =
          org.apache.spark.ml.util.DefaultParamsReader$.MODULE$.loadMetadata(
              path, sparkSession(), LoraAdapterModel.class.getName());
      var conf = sc().hadoopConfiguration();
      LoraAdapterModel info =
          HadoopDirs.read(
              path + "/" + INFO_DIR,
              conf,
              dir -> {
                try {
                  String base = Files.readString(dir.resolve(BASE_CONFIG_FILE));
                  TrainingSummary s =
                      JSON.readValue(dir.resolve(SUMMARY_FILE).toFile(), TrainingSummary.class);
                  return new LoraAdapterModel(metadata.uid(), null, s, base);
                } catch (IOException e) {
                  throw new UncheckedIOException(
                      "cannot read " + path + "/" + INFO_DIR + ": " + e.getMessage(), e);
                }
              });
      ModelConfig base = info.baseConfig();
      AdapterTensors tensors =
          HadoopDirs.read(
              path + "/" + ADAPTER_DIR,
              conf,
              dir -> {
                // validated now: fully where the method needs no base weights, else its config
                if (!PeftAdapter.readConfig(dir).method().variant().needsBase()) {
                  PeftAdapter.load(dir, base, DataType.FLOAT);
                }
                return AdapterTensors.read(dir);
              });
      LoraAdapterModel model =
          new LoraAdapterModel(metadata.uid(), tensors, info.summary, info.baseConfigJson);
      metadata.getAndSetParams(model, scala.Option.empty());
      return model;
    }
  }
}
