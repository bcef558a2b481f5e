package io.loraspark.pipeline.sweep;

import io.loraspark.pipeline.report.CsvTable;
import io.loraspark.train.loop.AdapterOutcome;
import io.loraspark.train.loop.AdapterStatus;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.NumericType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * A sweep's ranking and its files, {@code leaderboard.csv} and {@code leaderboard.parquet}: the one
 * place that names, orders, fills, writes and reads back the columns (the report reads the CSV
 * through {@link #read}).
 *
 * <p>Order: ok, then pruned, then failed; within each, lower eval loss first (NaN last), ties by
 * fewer trainable parameters, then id.
 */
public final class Leaderboard {
  /** The file name of the CSV, in the run directory. */
  public static final String CSV = "leaderboard.csv";

  /** The columns (DESIGN.md's contract, the first seven, first). */
  public static final StructType SCHEMA =
      new StructType()
          .add("rank", DataTypes.IntegerType, false)
          .add("adapter_id", DataTypes.StringType, false)
          .add("method", DataTypes.StringType, false)
          .add("lora_rank", DataTypes.IntegerType, false)
          .add("lr_ratio", DataTypes.DoubleType, false)
          .add("eval_loss", DataTypes.DoubleType, true)
          .add("status", DataTypes.StringType, false)
          .add("lr", DataTypes.DoubleType, false)
          .add("alpha", DataTypes.DoubleType, false)
          .add("targets", DataTypes.StringType, false)
          .add("steps", DataTypes.IntegerType, false)
          .add("train_loss", DataTypes.DoubleType, true)
          .add("base_eval_loss", DataTypes.DoubleType, true)
          .add("trainable_params", DataTypes.LongType, false)
          .add("tokens_per_s", DataTypes.DoubleType, true)
          .add("pruned_at_round", DataTypes.IntegerType, true)
          .add("failure", DataTypes.StringType, true)
          .add("perplexity", DataTypes.DoubleType, true)
          .add("pruned_at_step", DataTypes.IntegerType, true)
          .add("wall_seconds", DataTypes.DoubleType, true)
          .add("parent", DataTypes.StringType, true)
          .add("depth", DataTypes.IntegerType, false);

  /** The columns every leaderboard.csv has (older runs lack the later ones). */
  public static final List<String> REQUIRED = List.of(SCHEMA.fieldNames()).subList(0, 7);

  private Leaderboard() {}

  /** Lower eval loss first; ties by fewer trainable parameters, then id. NaN last. */
  static Comparator<SweepRunner.Entry> byLoss() {
    return Comparator.comparingDouble(
            (SweepRunner.Entry e) -> {
              double v = e.outcome() == null ? Double.NaN : e.outcome().evalLoss();
              return Double.isNaN(v) ? Double.POSITIVE_INFINITY : v;
            })
        .thenComparingLong(
            e -> e.outcome() == null ? Long.MAX_VALUE : e.outcome().trainableParams())
        .thenComparing(SweepRunner.Entry::id);
  }

  /** {@code entries} in leaderboard order: by status, then {@link #byLoss}. */
  static List<SweepRunner.Entry> ranked(Collection<SweepRunner.Entry> entries) {
    List<SweepRunner.Entry> board = new ArrayList<>(entries);
    board.sort(Comparator.comparing(SweepRunner.Entry::status).thenComparing(byLoss()));
    return board;
  }

  /**
   * One row per adapter of {@code board} (ranked), cells in {@link #SCHEMA}'s order.
   *
   * @param rungs each adapter's rungs (its stage's), for {@code pruned_at_step}
   */
  static List<Object[]> rows(
      List<SweepRunner.Entry> board, Function<SweepRunner.Entry, List<Integer>> rungs) {
    List<Object[]> out = new ArrayList<>();
    for (int i = 0; i < board.size(); i++) {
      SweepRunner.Entry e = board.get(i);
      AdapterOutcome o = e.outcome();
      SweepPlan.Planned p = e.planned();
      boolean pruned = e.status() == AdapterStatus.PRUNED;
      out.add(
          new Object[] {
            i + 1,
            e.id(),
            p.spec().lora().method().key(),
            p.spec().lora().rank(),
            p.spec().train().lrRatio(),
            o == null ? null : TableFiles.nullIfNaN(o.evalLoss()),
            (o == null ? AdapterStatus.FAILED : e.status()).fileName(),
            p.spec().train().lr(),
            p.spec().lora().alpha(),
            p.targets(),
            o == null ? 0 : o.steps(),
            o == null ? null : TableFiles.nullIfNaN(o.trainLoss()),
            o == null ? null : TableFiles.nullIfNaN(o.baseEvalLoss()),
            o == null ? 0L : o.trainableParams(),
            o == null ? null : o.tokensPerSecond(),
            pruned ? e.round() : null,
            o == null ? "never ran" : (o.failure().isEmpty() ? null : o.failure()),
            o == null || Double.isNaN(o.evalLoss()) ? null : Math.exp(o.evalLoss()),
            pruned ? rungs.apply(e).get(e.round() - 1) : null,
            e.wallSeconds(),
            p.parent(),
            p.depth()
          });
    }
    return out;
  }

  /** Writes {@code leaderboard.csv} and {@code leaderboard.parquet} under {@code runDir}. */
  static void write(
      SparkSession spark,
      Path runDir,
      List<SweepRunner.Entry> board,
      Function<SweepRunner.Entry, List<Integer>> rungs) {
    TableFiles.write(
        spark,
        SCHEMA,
        rows(board, rungs),
        runDir.resolve(CSV),
        runDir.resolve("leaderboard.parquet"));
  }

  /**
   * Reads a leaderboard.csv back, checked: the {@link #REQUIRED} columns, every numeric column of
   * {@link #SCHEMA} a number where present, each row an adapter_id and a known status.
   *
   * @throws IllegalArgumentException naming the file, row and column of the first bad value
   */
  public static CsvTable read(Path file) {
    CsvTable board = CsvTable.read(file, REQUIRED);
    List<Map<String, String>> maps = board.maps();
    for (int i = 0; i < maps.size(); i++) {
      Map<String, String> m = maps.get(i);
      String where = file + ": row " + (i + 2);
      for (StructField f : SCHEMA.fields()) {
        String v = m.get(f.name());
        if (v != null && f.dataType() instanceof NumericType && !isNumber(v)) {
          throw new IllegalArgumentException(
              where + ": " + f.name() + " must be a number but was '" + v + "'");
        }
      }
      if (m.get("adapter_id") == null || m.get("status") == null) {
        throw new IllegalArgumentException(where + " has no adapter_id or status");
      }
      try {
        AdapterStatus.parse(m.get("status"));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
      }
    }
    return board;
  }

  private static boolean isNumber(String s) {
    try {
      Double.parseDouble(s);
      return true;
    } catch (NumberFormatException e) {
      return false;
    }
  }
}
