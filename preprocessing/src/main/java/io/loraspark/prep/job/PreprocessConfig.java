package io.loraspark.prep.job;

import io.loraspark.prep.read.FileFormat;
import io.loraspark.prep.schema.ColumnMapping;
import io.loraspark.prep.schema.RecordFormat;
import io.loraspark.prep.template.TemplateKind;
import java.io.Serializable;
import java.util.Objects;

/**
 * Settings of one preprocess run. Build with {@link #builder(String, String, String)}; every
 * setting has a {@code DEFAULT_*} constant.
 *
 * @param input input file, directory or glob (any Hadoop URI)
 * @param modelDir local model directory holding tokenizer.json
 * @param output output directory URI
 * @param format record format ({@link RecordFormat#AUTO}: detect)
 * @param columns user column mapping, or null; overrides {@code format}
 * @param fileFormat storage format ({@link FileFormat#AUTO}: by extension/content)
 * @param template prompt template ({@link TemplateKind#AUTO}: the model's chat template if any)
 * @param maxSeqLen max tokens per row; 0 = the tokenizer's model_max_length, else {@value
 *     #FALLBACK_MAX_SEQ_LEN}
 * @param onTooLong truncate or reject longer examples
 * @param pack pack short examples into rows of up to maxSeqLen tokens
 * @param evalFraction fraction of examples held out, in [0, 1)
 * @param seed root seed of the split, shard and order hashes
 * @param shards number of output shards
 * @param minPartitions split JSON-lines input into at least this many partitions (0: default)
 * @param rawLimit chars of raw text kept per rejected row
 */
public record PreprocessConfig(
    String input,
    String modelDir,
    String output,
    RecordFormat format,
    ColumnMapping columns,
    FileFormat fileFormat,
    TemplateKind template,
    int maxSeqLen,
    TooLongPolicy onTooLong,
    boolean pack,
    double evalFraction,
    long seed,
    int shards,
    int minPartitions,
    int rawLimit)
    implements Serializable {

  /** Held-out fraction. */
  public static final double DEFAULT_EVAL_FRACTION = 0.1;

  /** Root seed. */
  public static final long DEFAULT_SEED = 42L;

  /** Output shards. */
  public static final int DEFAULT_SHARDS = 4;

  /** Raw chars kept per rejected row. */
  public static final int DEFAULT_RAW_LIMIT = 4096;

  /** max_seq_len when neither the user nor the tokenizer config sets one. */
  public static final int FALLBACK_MAX_SEQ_LEN = 2048;

  /** Validates ranges; messages name the option and the valid range. */
  public PreprocessConfig {
    Objects.requireNonNull(input, "input");
    Objects.requireNonNull(modelDir, "modelDir");
    Objects.requireNonNull(output, "output");
    Objects.requireNonNull(format, "format");
    Objects.requireNonNull(fileFormat, "fileFormat");
    Objects.requireNonNull(template, "template");
    Objects.requireNonNull(onTooLong, "onTooLong");
    require(maxSeqLen == 0 || maxSeqLen >= 2, "--max-seq-len", maxSeqLen, "must be >= 2");
    require(
        evalFraction >= 0 && evalFraction < 1,
        "--eval-fraction",
        evalFraction,
        "must be in [0, 1)");
    require(shards >= 1 && shards <= 100_000, "--shards", shards, "must be in [1, 100000]");
    require(minPartitions >= 0, "--partitions", minPartitions, "must be >= 0");
    require(rawLimit >= 0, "raw limit", rawLimit, "must be >= 0");
    if (columns != null && format != RecordFormat.AUTO) {
      throw new IllegalArgumentException(
          "Cannot combine --columns with --format " + format.cliName() + "; use one of them");
    }
  }

  private static void require(boolean ok, String key, Object value, String what) {
    if (!ok) {
      throw new IllegalArgumentException("Cannot set " + key + " to " + value + ", " + what);
    }
  }

  /** A builder with every default set. */
  public static Builder builder(String input, String modelDir, String output) {
    return new Builder(input, modelDir, output);
  }

  /** A builder starting from this config. */
  public Builder toBuilder() {
    return new Builder(this);
  }

  /** Mutable builder; {@link #build()} validates. */
  public static final class Builder {
    private String input;
    private String modelDir;
    private String output;
    private RecordFormat format = RecordFormat.AUTO;
    private ColumnMapping columns;
    private FileFormat fileFormat = FileFormat.AUTO;
    private TemplateKind template = TemplateKind.AUTO;
    private int maxSeqLen;
    private TooLongPolicy onTooLong = TooLongPolicy.TRUNCATE;
    private boolean pack;
    private double evalFraction = DEFAULT_EVAL_FRACTION;
    private long seed = DEFAULT_SEED;
    private int shards = DEFAULT_SHARDS;
    private int minPartitions;
    private int rawLimit = DEFAULT_RAW_LIMIT;

    private Builder(String input, String modelDir, String output) {
      this.input = input;
      this.modelDir = modelDir;
      this.output = output;
    }

    private Builder(PreprocessConfig c) {
      this(c.input, c.modelDir, c.output);
      format = c.format;
      columns = c.columns;
      fileFormat = c.fileFormat;
      template = c.template;
      maxSeqLen = c.maxSeqLen;
      onTooLong = c.onTooLong;
      pack = c.pack;
      evalFraction = c.evalFraction;
      seed = c.seed;
      shards = c.shards;
      minPartitions = c.minPartitions;
      rawLimit = c.rawLimit;
    }

    public Builder input(String v) {
      input = v;
      return this;
    }

    public Builder output(String v) {
      output = v;
      return this;
    }

    public Builder format(RecordFormat v) {
      format = v;
      return this;
    }

    public Builder columns(ColumnMapping v) {
      columns = v;
      return this;
    }

    public Builder fileFormat(FileFormat v) {
      fileFormat = v;
      return this;
    }

    public Builder template(TemplateKind v) {
      template = v;
      return this;
    }

    public Builder maxSeqLen(int v) {
      maxSeqLen = v;
      return this;
    }

    public Builder onTooLong(TooLongPolicy v) {
      onTooLong = v;
      return this;
    }

    public Builder pack(boolean v) {
      pack = v;
      return this;
    }

    public Builder evalFraction(double v) {
      evalFraction = v;
      return this;
    }

    public Builder seed(long v) {
      seed = v;
      return this;
    }

    public Builder shards(int v) {
      shards = v;
      return this;
    }

    public Builder minPartitions(int v) {
      minPartitions = v;
      return this;
    }

    public Builder rawLimit(int v) {
      rawLimit = v;
      return this;
    }

    /** Validates and builds. */
    public PreprocessConfig build() {
      return new PreprocessConfig(
          input,
          modelDir,
          output,
          format,
          columns,
          fileFormat,
          template,
          maxSeqLen,
          onTooLong,
          pack,
          evalFraction,
          seed,
          shards,
          minPartitions,
          rawLimit);
    }
  }
}
