package io.loraspark.prep.job;

import com.fasterxml.jackson.databind.JsonNode;
import io.loraspark.prep.read.InputFile;
import io.loraspark.prep.read.InputFiles;
import io.loraspark.prep.read.InputReader;
import io.loraspark.prep.read.RawRecord;
import io.loraspark.prep.read.StrictJson;
import io.loraspark.prep.schema.RecordFormat;
import io.loraspark.prep.schema.RecordMapper;
import io.loraspark.prep.schema.RowRejection;
import io.loraspark.prep.shard.Manifest;
import io.loraspark.prep.shard.OutputCommitter;
import io.loraspark.prep.template.ChatTemplate;
import io.loraspark.prep.template.PromptTemplate;
import io.loraspark.prep.template.TemplateKind;
import io.loraspark.prep.tokenize.ExampleEncoder;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.prep.tokenize.TokenizerSpec;
import java.net.URI;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

/**
 * The preprocess job: instruction data → tokenized, masked, split Parquet shards.
 *
 * <p>Recipe: resolve input files → read numbered raw rows → strict JSON → normalized conversation
 * (rejecting bad rows with a reason) → drop exact duplicates (same example id; the first by input
 * order is kept) → render, tokenize and mask on the executors → truncate or reject long examples →
 * split and shard by a seeded hash of the example id → sort each shard, optionally pack → write
 * {@code shards/}, {@code rejected/} and last {@code manifest.json}, swapping them in atomically.
 * The job checks {@code input_rows = accepted + rejected + duplicates} against what it wrote and
 * fails with {@link IllegalStateException} otherwise. A bad row never fails the job; a bad input as
 * a whole (missing, empty, unknown format, no tokenizer) fails with {@link
 * IllegalArgumentException} before any output is touched.
 */
public final class PreprocessJob {

  /** Records sampled to detect the record format. */
  static final int DETECT_SAMPLE = 100;

  private final PreprocessConfig config;
  private final Consumer<String> progress;

  /**
   * @param config the run's settings
   * @param progress receives one-line progress messages (the CLI prints them to stderr)
   */
  public PreprocessJob(PreprocessConfig config, Consumer<String> progress) {
    this.config = Objects.requireNonNull(config, "config");
    this.progress = Objects.requireNonNull(progress, "progress");
  }

  /** What the driver resolved before reading data. */
  record Setup(
      List<InputFile> files,
      TokenizerSpec spec,
      TemplateKind template,
      String templateHash,
      int maxSeqLen) {}

  /**
   * Checks, without Spark, what makes the whole run invalid: the model's tokenizer and template,
   * and a local input's existence. Lets the CLI fail fast with one line before starting Spark.
   *
   * @throws IllegalArgumentException naming the problem
   */
  public static void precheck(PreprocessConfig config) {
    String scheme = URI.create(config.input().replace(" ", "%20")).getScheme();
    if (scheme == null || scheme.equals("file")) {
      inputFiles(config, new Configuration());
    }
    try (TextTokenizer tokenizer = TextTokenizer.load(modelDir(config))) {
      resolveTemplate(config, tokenizer);
    }
  }

  /**
   * Runs the job.
   *
   * @return the manifest written last
   * @throws IllegalArgumentException for a whole-input problem
   * @throws IllegalStateException if the counts identity does not hold
   */
  public Manifest run(SparkSession spark) {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    Configuration hadoop = jsc.hadoopConfiguration();
    Setup setup = setup(inputFiles(config, hadoop));
    progress.accept(
        "preprocess: "
            + setup.files().size()
            + " input file(s), template "
            + setup.template().cliName()
            + ", max_seq_len "
            + setup.maxSeqLen());
    InputReader.Input input = InputReader.read(spark, setup.files(), config.minPartitions());
    Mapping mapping = mapper(input.records());
    progress.accept("preprocess: record format " + mapping.name());
    JavaRDD<Outcome> mapped =
        input
            .records()
            .map(new MapRecord(mapping.mapper(), config.rawLimit()))
            .persist(StorageLevel.MEMORY_AND_DISK());
    JavaRDD<Outcome> tokenized = null;
    try (OutputCommitter out = OutputCommitter.begin(hadoop, config.output())) {
      Map<String, Long> mappedKinds = mapped.map(Outcome::kind).countByValue();
      Broadcast<TokenizerSpec> spec = jsc.broadcast(setup.spec());
      tokenized =
          dedupe(mapped, jsc.defaultParallelism())
              .mapPartitions(
                  new TokenizeExamples(spec, setup.template(), setup.maxSeqLen(), config))
              .persist(StorageLevel.MEMORY_AND_DISK());
      TokenizedSummary summary =
          tokenized.aggregate(
              new TokenizedSummary(), TokenizedSummary::add, TokenizedSummary::merge);
      Counts counts = Counts.of(mappedKinds, summary.kinds, input.blankLines());
      progress.accept("preprocess: " + counts.inputRows() + " rows, writing shards");
      ShardWriter.writeShards(
          spark,
          tokenized,
          config.shards(),
          setup.maxSeqLen(),
          config.pack(),
          out.staging(OutputCommitter.SHARDS));
      ShardWriter.writeRejected(
          spark, mapped.union(tokenized), counts.rejected(), out.staging(OutputCommitter.REJECTED));
      Manifest manifest = manifest(spark, setup, mapping.name(), counts, out, summary);
      out.commit(
          manifest.json().toPrettyString(), OutputCommitter.SHARDS, OutputCommitter.REJECTED);
      progress.accept(
          "preprocess: wrote " + manifest.accepted() + " examples to " + config.output());
      return manifest;
    } finally {
      mapped.unpersist(false);
      if (tokenized != null) {
        tokenized.unpersist(false);
      }
    }
  }

  private Manifest manifest(
      SparkSession spark,
      Setup setup,
      String format,
      Counts counts,
      OutputCommitter out,
      TokenizedSummary summary) {
    Configuration hadoop = spark.sparkContext().hadoopConfiguration();
    List<FileStatus> shardFiles = out.nameParts(OutputCommitter.SHARDS);
    List<FileStatus> rejectedFiles = out.nameParts(OutputCommitter.REJECTED);
    ManifestBuilder m = new ManifestBuilder(config, setup, format, counts);
    m.tokenStats(summary.tokenStats());
    m.splits(
        ShardWriter.splitStats(spark, out.staging(OutputCommitter.SHARDS), !shardFiles.isEmpty()));
    m.shardFiles(shardFiles, hadoop);
    long rejectedOnDisk = ShardWriter.rows(rejectedFiles, hadoop);
    return m.build(rejectedOnDisk);
  }

  /**
   * The input files, refusing an output directory inside the input (a rerun would read its own
   * shards).
   */
  static List<InputFile> inputFiles(PreprocessConfig config, Configuration hadoop) {
    List<InputFile> files = InputFiles.resolve(hadoop, config.input(), config.fileFormat());
    org.apache.hadoop.fs.Path output = new org.apache.hadoop.fs.Path(config.output());
    String prefix;
    try {
      prefix = output.getFileSystem(hadoop).makeQualified(output) + "/";
    } catch (java.io.IOException e) {
      throw new IllegalArgumentException(
          "cannot use output " + config.output() + ": " + e.getMessage(), e);
    }
    for (InputFile f : files) {
      if (f.uri().startsWith(prefix)) {
        throw new IllegalArgumentException(
            "input "
                + config.input()
                + " includes the output directory "
                + config.output()
                + " ("
                + f.uri()
                + "); write the output outside the input");
      }
    }
    return files;
  }

  /** One row per example id: the first in input order. */
  static JavaRDD<Outcome.Mapped> dedupe(JavaRDD<Outcome> mapped, int partitions) {
    return mapped
        .filter(o -> o instanceof Outcome.Mapped)
        .mapToPair(o -> new Tuple2<>(((Outcome.Mapped) o).exampleId(), (Outcome.Mapped) o))
        .reduceByKey(Outcome.Mapped::earlier, partitions)
        .values();
  }

  private Setup setup(List<InputFile> files) {
    Path modelDir = modelDir(config);
    try (TextTokenizer tokenizer = TextTokenizer.load(modelDir)) {
      TemplateKind kind = resolveTemplate(config, tokenizer);
      int maxSeqLen =
          config.maxSeqLen() > 0
              ? config.maxSeqLen()
              : tokenizer.modelMaxLength().orElse(PreprocessConfig.FALLBACK_MAX_SEQ_LEN);
      String templateHash =
          kind == TemplateKind.CHAT ? ManifestBuilder.sha256(tokenizer.chatTemplate().get()) : null;
      return new Setup(
          files,
          TokenizerSpec.read(modelDir, tokenizer.contentHash()),
          kind,
          templateHash,
          maxSeqLen);
    }
  }

  private static TemplateKind resolveTemplate(PreprocessConfig config, TextTokenizer tokenizer) {
    TemplateKind kind =
        config.template().resolve(tokenizer.chatTemplate().isPresent(), config.modelDir());
    PromptTemplate template = ExampleEncoder.template(kind, tokenizer);
    if (template instanceof ChatTemplate chat) {
      chat.validate(config.modelDir());
    }
    return kind;
  }

  static Path modelDir(PreprocessConfig config) {
    String dir = config.modelDir();
    return dir.startsWith("file:") ? Path.of(URI.create(dir)) : Path.of(dir);
  }

  /** The record mapper and its name for the manifest. */
  record Mapping(RecordMapper mapper, String name) {}

  private Mapping mapper(JavaRDD<RawRecord> records) {
    if (config.columns() != null) {
      RecordMapper m = config.columns().mapper();
      return new Mapping(m, "columns " + m.describe());
    }
    RecordFormat format = config.format();
    if (format == RecordFormat.AUTO) {
      List<JsonNode> sample = new ArrayList<>();
      for (RawRecord r : records.filter(r -> r.error() == null).take(DETECT_SAMPLE)) {
        try {
          sample.add(StrictJson.parse(r.raw()));
        } catch (RowRejection e) {
          // malformed rows are rejected later; detection looks at the readable ones
        }
      }
      if (sample.isEmpty()) {
        throw new IllegalArgumentException(
            "input " + config.input() + " has no readable JSON record to detect the format from");
      }
      format = RecordFormat.detect(sample, config.input());
    }
    return new Mapping(format.mapper(), format.cliName());
  }
}
