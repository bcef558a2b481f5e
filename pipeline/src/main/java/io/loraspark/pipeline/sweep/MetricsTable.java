package io.loraspark.pipeline.sweep;

import io.loraspark.train.loop.AdapterOutcome;
import io.loraspark.train.loop.StepMetrics;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * A sweep's {@code metrics.csv} and {@code metrics/} (Parquet): one row per (adapter, step), a
 * replicated configuration's rows under each replica's id.
 */
public final class MetricsTable {
  /** The columns. */
  public static final StructType SCHEMA =
      new StructType()
          .add("adapter_id", DataTypes.StringType, false)
          .add("step", DataTypes.IntegerType, false)
          .add("train_loss", DataTypes.DoubleType, true)
          .add("eval_loss", DataTypes.DoubleType, true)
          .add("lr", DataTypes.DoubleType, false)
          .add("grad_norm", DataTypes.DoubleType, true)
          .add("tokens", DataTypes.LongType, false)
          .add("tokens_per_s", DataTypes.DoubleType, true);

  private MetricsTable() {}

  /** The rows of {@code board}'s adapters, in board order. */
  static List<Object[]> rows(List<SweepRunner.Entry> board) {
    List<Object[]> out = new ArrayList<>();
    for (SweepRunner.Entry e : board) {
      AdapterOutcome o = e.outcome();
      List<AdapterOutcome> withMetrics =
          e.replicas().size() > 1 ? e.replicas() : o == null ? List.of() : List.of(o);
      for (AdapterOutcome src : withMetrics) {
        if (src == null) {
          continue;
        }
        for (StepMetrics m : src.metrics()) {
          out.add(
              new Object[] {
                src.adapterId(),
                m.step(),
                TableFiles.nullIfNaN(m.trainLoss()),
                TableFiles.nullIfNaN(m.evalLoss()),
                m.lr(),
                TableFiles.nullIfNaN(m.gradNorm()),
                m.tokens(),
                TableFiles.nullIfNaN(m.tokensPerSecond())
              });
        }
      }
    }
    return out;
  }

  /** Writes {@code metrics.csv} and {@code metrics/} under {@code runDir}. */
  static void write(SparkSession spark, Path runDir, List<SweepRunner.Entry> board) {
    TableFiles.write(
        spark, SCHEMA, rows(board), runDir.resolve("metrics.csv"), runDir.resolve("metrics"));
  }
}
