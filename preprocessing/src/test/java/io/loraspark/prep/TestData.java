package io.loraspark.prep;

import java.nio.file.Path;
import org.apache.spark.sql.SparkSession;

/** Paths to the project's real fixtures and the shared local[2] Spark session settings. */
public final class TestData {

  /** Repository root. */
  public static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

  /** The bundled stories260K model (Llama tokenizer, vocab 512, no chat template). */
  public static final Path STORIES = ROOT.resolve("models/stories260K");

  /** Instruction datasets used by the tests. */
  public static final Path FIXTURE_DATA = ROOT.resolve("fixtures/data");

  /** The bundled self-instruct sample data. */
  public static final Path SELF_INSTRUCT = ROOT.resolve("data/self-instruct");

  private TestData() {}

  /** A local[2] session for one test class (stop it in {@code @AfterAll}). */
  public static SparkSession spark() {
    return SparkSession.builder()
        .master("local[2]")
        .appName("lora-spark-prep-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate();
  }
}
