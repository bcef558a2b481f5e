package io.loraspark.pipeline.spark;

import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;

/**
 * The pipeline's Spark session: under {@code spark-submit} the master and settings it was given;
 * from {@code bin/lora-pipeline} an embedded {@code local[*]} (or the master a config names), with
 * the UI off and one BLAS thread per task core.
 */
public final class Sessions {
  private Sessions() {}

  /**
   * @param master the config's master, or null for spark-submit's or {@code local[*]}
   * @param settings extra {@code spark.*} settings
   */
  public static SparkSession getOrCreate(
      String appName, String master, Map<String, String> settings) {
    SparkConf conf = new SparkConf(true);
    if (master != null && !master.isBlank()) {
      conf.setMaster(master);
    } else if (!conf.contains("spark.master")) {
      conf.setMaster("local[*]");
    }
    conf.setIfMissing("spark.app.name", appName);
    boolean local = conf.get("spark.master").startsWith("local");
    if (local) {
      conf.setIfMissing("spark.ui.enabled", "false");
      conf.setIfMissing("spark.driver.host", "127.0.0.1");
      // running tasks report their step counters with the heartbeat: a live bar, not a 10 s one
      conf.setIfMissing("spark.executor.heartbeatInterval", "2s");
    }
    conf.setIfMissing("spark.sql.shuffle.partitions", "8");
    conf.setIfMissing("spark.executorEnv.OMP_NUM_THREADS", conf.get("spark.task.cpus", "1"));
    // precision bf16: oneDNN's OpenMP threads sleep between matmuls instead of spinning on the
    // cores the task's Java kernels and OpenBLAS use next (spinning made a bf16 step 1.5-2x slower)
    conf.setIfMissing("spark.executorEnv.OMP_WAIT_POLICY", "PASSIVE");
    settings.forEach(conf::set);
    return SparkSession.builder().config(conf).getOrCreate();
  }

  /** BLAS/OpenMP threads each task should use: its {@code spark.task.cpus}. */
  public static int threadsPerTask(SparkSession spark) {
    return Integer.parseInt(spark.conf().get("spark.task.cpus", "1"));
  }
}
