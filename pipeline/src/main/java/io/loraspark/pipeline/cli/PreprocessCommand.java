package io.loraspark.pipeline.cli;

import io.loraspark.prep.job.PreprocessConfig;
import io.loraspark.prep.job.PreprocessJob;
import io.loraspark.prep.job.TooLongPolicy;
import io.loraspark.prep.read.FileFormat;
import io.loraspark.prep.schema.ColumnMapping;
import io.loraspark.prep.schema.RecordFormat;
import io.loraspark.prep.shard.Manifest;
import io.loraspark.prep.template.TemplateKind;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code preprocess}: instruction data → tokenized, masked, split Parquet shards (DESIGN.md).
 * Writes {@code shards/}, {@code rejected/} and {@code manifest.json} under OUTPUT and prints one
 * JSON line with the counts; progress goes to stderr. Whole-input problems exit 2 before Spark
 * starts; a bad row never fails the run.
 */
@Command(
    name = "preprocess",
    mixinStandardHelpOptions = true,
    description = {
      "Tokenizes instruction data into Parquet shards + rejected/ + manifest.json under OUTPUT.",
      "Prints one JSON line: input_rows, accepted, rejected, duplicates, rejected_by_reason, ..."
    })
final class PreprocessCommand implements Callable<Integer> {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(
      names = "--input",
      required = true,
      description = "file, directory or glob (any Hadoop URI)")
  String input;

  @Option(names = "--model", required = true, description = "model directory with tokenizer.json")
  String model;

  @Option(names = "--output", required = true, description = "output directory (replaced outputs)")
  String output;

  @Option(
      names = "--format",
      defaultValue = "auto",
      description = "auto|alpaca|dolly|sharegpt|messages|self-instruct (default: ${DEFAULT-VALUE})")
  String format;

  @Option(
      names = "--input-format",
      defaultValue = "auto",
      description = "auto|jsonl|json|parquet|csv (default: ${DEFAULT-VALUE}: by extension/content)")
  String inputFormat;

  @Option(
      names = "--columns",
      description = "map other columns, e.g. prompt=question,response=answer[,input=C][,system=C]")
  String columns;

  @Option(
      names = "--template",
      defaultValue = "auto",
      description =
          "auto|alpaca|chat (default: ${DEFAULT-VALUE}: the model's chat_template if any)")
  String template;

  @Option(
      names = "--max-seq-len",
      defaultValue = "0",
      description = "max tokens per row (default: the tokenizer's model_max_length, else 2048)")
  int maxSeqLen;

  @Option(
      names = "--on-too-long",
      defaultValue = "truncate",
      description = "truncate|reject (default: ${DEFAULT-VALUE})")
  String onTooLong;

  @Option(names = "--pack", description = "pack short examples into rows of max-seq-len tokens")
  boolean pack;

  @Option(
      names = "--eval-fraction",
      defaultValue = "" + PreprocessConfig.DEFAULT_EVAL_FRACTION,
      description = "held-out fraction in [0, 1) (default: ${DEFAULT-VALUE})")
  double evalFraction;

  @Option(
      names = "--seed",
      defaultValue = "" + PreprocessConfig.DEFAULT_SEED,
      description = "seed of the split/shard/order hashes (default: ${DEFAULT-VALUE})")
  long seed;

  @Option(
      names = "--shards",
      defaultValue = "" + PreprocessConfig.DEFAULT_SHARDS,
      description = "number of output shards (default: ${DEFAULT-VALUE})")
  int shards;

  @Option(
      names = "--partitions",
      defaultValue = "0",
      description = "split JSON-lines input into at least N partitions (default: Hadoop's)")
  int partitions;

  @Option(
      names = "--master",
      defaultValue = "local[*]",
      description = "Spark master when spark-submit sets none (default: ${DEFAULT-VALUE})")
  String master;

  @Override
  public Integer call() {
    PreprocessConfig config = config();
    PreprocessJob.precheck(config);
    PrintWriter err = spec.commandLine().getErr();
    boolean ownSession =
        SparkSession.getActiveSession().isEmpty() && SparkSession.getDefaultSession().isEmpty();
    SparkSession spark = session();
    try {
      Manifest manifest = new PreprocessJob(config, err::println).run(spark);
      spec.commandLine().getOut().println(manifest.summary());
    } finally {
      if (ownSession) {
        spark.stop();
      }
    }
    return Main.OK;
  }

  private PreprocessConfig config() {
    return PreprocessConfig.builder(input, model, output)
        .format(RecordFormat.parse(format))
        .fileFormat(FileFormat.parse(inputFormat))
        .columns(columns == null ? null : ColumnMapping.parse(columns))
        .template(TemplateKind.parse(template))
        .maxSeqLen(maxSeqLen)
        .onTooLong(TooLongPolicy.parse(onTooLong))
        .pack(pack)
        .evalFraction(evalFraction)
        .seed(seed)
        .shards(shards)
        .minPartitions(partitions)
        .build();
  }

  /** The session: spark-submit's master if it set one, else {@code --master} without a UI. */
  private SparkSession session() {
    SparkSession.Builder builder = SparkSession.builder().appName("lora-spark preprocess");
    String configured = new SparkConf().get("spark.master", null);
    if (configured == null) {
      builder.master(master);
    }
    if ((configured == null ? master : configured).startsWith("local")) {
      builder.config("spark.ui.enabled", "false");
    }
    return builder.getOrCreate();
  }
}
