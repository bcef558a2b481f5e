package io.loraspark.pipeline.ml;

import io.loraspark.prep.ml.InstructionTokenizer;
import java.nio.file.Path;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/** The real fixtures the Spark ML tests run on: stories260K and the bundled self-instruct seeds. */
final class MlFixtures {
  static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
  static final Path STORIES = ROOT.resolve("models/stories260K");
  static final Path SEEDS =
      ROOT.resolve("data/self-instruct/alpaca-format-self-instruct-seed.jsonl");

  /** Tokens per example; longer ones are truncated (rows with no response token left: null). */
  static final int MAX_SEQ_LEN = 192;

  private MlFixtures() {}

  /** A local[2] session for one test class (stop it in {@code @AfterAll}). */
  static SparkSession spark() {
    return SparkSession.builder()
        .master("local[2]")
        .appName("lora-spark-ml-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate();
  }

  /** The 175 Alpaca-format seeds: instruction, input, output. */
  static Dataset<Row> seeds(SparkSession spark) {
    return spark.read().json(SEEDS.toString());
  }

  /** The Alpaca template + stories260K tokenizer, as preprocess applies them. */
  static InstructionTokenizer tokenizer() {
    return new InstructionTokenizer()
        .setModelDir(STORIES.toString())
        .setTemplate("alpaca")
        .setMaxSeqLen(MAX_SEQ_LEN);
  }
}
