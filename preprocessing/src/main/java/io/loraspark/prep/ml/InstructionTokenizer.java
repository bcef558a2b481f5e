package io.loraspark.prep.ml;

import io.loraspark.prep.job.TooLongPolicy;
import io.loraspark.prep.shard.ShardSchema;
import io.loraspark.prep.template.ChatTemplate;
import io.loraspark.prep.template.PromptTemplate;
import io.loraspark.prep.template.TemplateKind;
import io.loraspark.prep.tokenize.ExampleEncoder;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.prep.tokenize.TokenizerSpec;
import java.nio.file.Path;
import java.util.Arrays;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.util.DefaultParamsReadable;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.Identifiable$;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The preprocessing step as a Spark ML {@link Transformer}: renders instruction/context/response
 * string columns with a prompt template, tokenizes and masks them, and appends {@code input_ids}
 * and {@code labels} (HF-aligned, -100 where not scored) plus a {@code reject_reason} column. A row
 * that cannot be used keeps null ids and labels and gets its reason code; nothing is dropped, so
 * the transformer maps rows one to one. Examples longer than {@code maxSeqLen} are truncated or
 * rejected ({@code onTooLong}).
 *
 * <p>Persistence: {@link DefaultParamsWritable} ({@code write().save(path)}) and {@link #load}
 * store and restore the params as JSON metadata, so the transformer fits in a saved {@code
 * Pipeline}. The model directory must be readable where the transformer runs; executors get the
 * tokenizer files broadcast and load one tokenizer per JVM.
 */
public final class InstructionTokenizer extends Transformer implements DefaultParamsWritable {
  private static final long serialVersionUID = 1L;

  private final String uid;
  private final Param<String> modelDir;
  private final Param<String> template;
  private final IntParam maxSeqLen;
  private final Param<String> onTooLong;
  private final Param<String> instructionCol;
  private final Param<String> contextCol;
  private final Param<String> responseCol;
  private final Param<String> inputIdsCol;
  private final Param<String> labelsCol;
  private final Param<String> rejectReasonCol;

  /** A transformer with a random uid and default params. */
  public InstructionTokenizer() {
    this(Identifiable$.MODULE$.randomUID("instructionTokenizer"));
  }

  /**
   * A transformer with the given uid (used by {@link #load}).
   *
   * @param uid the ML uid
   */
  public InstructionTokenizer(String uid) {
    this.uid = uid;
    modelDir = new Param<>(this, "modelDir", "model directory holding tokenizer.json");
    template =
        new Param<>(
            this,
            "template",
            "prompt template: auto|alpaca|chat",
            ParamValidators.inArray(new String[] {"auto", "alpaca", "chat"}));
    maxSeqLen = new IntParam(this, "maxSeqLen", "max tokens per example", ParamValidators.gtEq(2));
    onTooLong =
        new Param<>(
            this,
            "onTooLong",
            "longer examples: truncate|reject",
            ParamValidators.inArray(new String[] {"truncate", "reject"}));
    instructionCol = new Param<>(this, "instructionCol", "instruction (prompt) column");
    contextCol = new Param<>(this, "contextCol", "optional context (input) column; '' for none");
    responseCol = new Param<>(this, "responseCol", "response (output) column");
    inputIdsCol = new Param<>(this, "inputIdsCol", "output column of token ids");
    labelsCol = new Param<>(this, "labelsCol", "output column of labels");
    rejectReasonCol = new Param<>(this, "rejectReasonCol", "output column of reject reasons");
    setDefault(template, "auto");
    setDefault(maxSeqLen, 2048);
    setDefault(onTooLong, "truncate");
    setDefault(instructionCol, "instruction");
    setDefault(contextCol, "input");
    setDefault(responseCol, "output");
    setDefault(inputIdsCol, ShardSchema.INPUT_IDS);
    setDefault(labelsCol, ShardSchema.LABELS);
    setDefault(rejectReasonCol, "reject_reason");
  }

  @Override
  public String uid() {
    return uid;
  }

  // Params are found by reflection (public no-arg methods returning Param), one accessor each.

  public Param<String> modelDir() {
    return modelDir;
  }

  public Param<String> template() {
    return template;
  }

  public IntParam maxSeqLen() {
    return maxSeqLen;
  }

  public Param<String> onTooLong() {
    return onTooLong;
  }

  public Param<String> instructionCol() {
    return instructionCol;
  }

  public Param<String> contextCol() {
    return contextCol;
  }

  public Param<String> responseCol() {
    return responseCol;
  }

  public Param<String> inputIdsCol() {
    return inputIdsCol;
  }

  public Param<String> labelsCol() {
    return labelsCol;
  }

  public Param<String> rejectReasonCol() {
    return rejectReasonCol;
  }

  /** The maxSeqLen value (IntParam is a {@code Param<Object>} seen from Java). */
  public int getMaxSeqLen() {
    return (Integer) getOrDefault(maxSeqLen);
  }

  public InstructionTokenizer setModelDir(String v) {
    set(modelDir, v);
    return this;
  }

  public InstructionTokenizer setTemplate(String v) {
    set(template, v);
    return this;
  }

  public InstructionTokenizer setMaxSeqLen(int v) {
    set(maxSeqLen, v);
    return this;
  }

  public InstructionTokenizer setOnTooLong(String v) {
    set(onTooLong, v);
    return this;
  }

  public InstructionTokenizer setInstructionCol(String v) {
    set(instructionCol, v);
    return this;
  }

  public InstructionTokenizer setContextCol(String v) {
    set(contextCol, v);
    return this;
  }

  public InstructionTokenizer setResponseCol(String v) {
    set(responseCol, v);
    return this;
  }

  public InstructionTokenizer setInputIdsCol(String v) {
    set(inputIdsCol, v);
    return this;
  }

  public InstructionTokenizer setLabelsCol(String v) {
    set(labelsCol, v);
    return this;
  }

  public InstructionTokenizer setRejectReasonCol(String v) {
    set(rejectReasonCol, v);
    return this;
  }

  /**
   * Checks the input columns (string) and that the output columns are new.
   *
   * @throws IllegalArgumentException naming the column
   */
  @Override
  public StructType transformSchema(StructType schema) {
    if (!isDefined(modelDir)) {
      throw new IllegalArgumentException("InstructionTokenizer needs modelDir; call setModelDir");
    }
    requireString(schema, $(instructionCol));
    requireString(schema, $(responseCol));
    if (!$(contextCol).isEmpty()) {
      requireString(schema, $(contextCol));
    }
    DataType ints = DataTypes.createArrayType(DataTypes.IntegerType, false);
    StructType out = schema;
    for (String c : new String[] {$(inputIdsCol), $(labelsCol), $(rejectReasonCol)}) {
      if (Arrays.asList(schema.fieldNames()).contains(c)) {
        throw new IllegalArgumentException("Output column " + c + " already exists.");
      }
    }
    out = out.add($(inputIdsCol), ints, true).add($(labelsCol), ints, true);
    return out.add($(rejectReasonCol), DataTypes.StringType, true);
  }

  private static void requireString(StructType schema, String column) {
    if (!Arrays.asList(schema.fieldNames()).contains(column)) {
      throw new IllegalArgumentException(
          "Column "
              + column
              + " does not exist; columns are "
              + Arrays.toString(schema.fieldNames()));
    }
    StructField f = schema.apply(column);
    if (!f.dataType().equals(DataTypes.StringType)) {
      throw new IllegalArgumentException(
          "Column " + column + " must be string but was " + f.dataType().simpleString());
    }
  }

  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    StructType out = transformSchema(dataset.schema());
    TokenizerSpec spec;
    TemplateKind kind;
    Path dir = Path.of($(modelDir));
    try (TextTokenizer tokenizer = TextTokenizer.load(dir)) {
      kind =
          TemplateKind.parse($(template))
              .resolve(tokenizer.chatTemplate().isPresent(), $(modelDir));
      PromptTemplate t = ExampleEncoder.template(kind, tokenizer);
      if (t instanceof ChatTemplate chat) {
        chat.validate($(modelDir));
      }
      spec = TokenizerSpec.read(dir, tokenizer.contentHash());
    }
    Broadcast<TokenizerSpec> b =
        JavaSparkContext.fromSparkContext(dataset.sparkSession().sparkContext()).broadcast(spec);
    StructType in = dataset.schema();
    TokenizeRows f =
        new TokenizeRows(
            b,
            kind,
            getMaxSeqLen(),
            TooLongPolicy.parse($(onTooLong)),
            in.fieldIndex($(instructionCol)),
            $(contextCol).isEmpty() ? -1 : in.fieldIndex($(contextCol)),
            in.fieldIndex($(responseCol)));
    return dataset.toDF().mapPartitions(f, Encoders.row(out));
  }

  @Override
  public InstructionTokenizer copy(ParamMap extra) {
    return defaultCopy(extra);
  }

  /** The reader used by {@link #load} and by {@code Pipeline} persistence. */
  public static MLReader<InstructionTokenizer> read() {
    return new Reader().read();
  }

  /**
   * Loads a transformer saved with {@code write().save(path)}.
   *
   * @param path the directory it was saved to
   */
  public static InstructionTokenizer load(String path) {
    return read().load(path);
  }

  /** Spark's default params reader, reached through its Scala trait. */
  private static final class Reader implements DefaultParamsReadable<InstructionTokenizer> {}
}
