package io.loraspark.pipeline.sweep;

import io.loraspark.train.io.AtomicFiles;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.StructType;

/**
 * Writes one table of a run twice, as CSV (doubles as {@code %.6g}, null as an empty field, RFC
 * 4180 quoting) and as Parquet with its schema; the leaderboard and the metrics use it.
 */
final class TableFiles {
  private TableFiles() {}

  /** The CSV text of {@code rows} (cells in {@code schema}'s column order) under its header. */
  static String csv(StructType schema, List<Object[]> rows) {
    StringBuilder b = new StringBuilder(String.join(",", schema.fieldNames())).append('\n');
    rows.forEach(r -> b.append(csvLine(r)));
    return b.toString();
  }

  /** Writes {@code csvFile} and the Parquet directory {@code parquetDir} (one file). */
  static void write(
      SparkSession spark, StructType schema, List<Object[]> rows, Path csvFile, Path parquetDir) {
    AtomicFiles.writeString(csvFile, csv(schema, rows));
    List<Row> sparkRows = new ArrayList<>(rows.size());
    rows.forEach(r -> sparkRows.add(RowFactory.create(r)));
    spark
        .createDataFrame(sparkRows, schema)
        .coalesce(1)
        .write()
        .mode(SaveMode.Overwrite)
        .parquet(parquetDir.toAbsolutePath().toUri().toString());
  }

  /** A double as a nullable cell: NaN is null. */
  static Object nullIfNaN(double v) {
    return Double.isNaN(v) ? null : v;
  }

  private static String csvLine(Object[] v) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < v.length; i++) {
      if (i > 0) {
        b.append(',');
      }
      Object x = v[i];
      String s =
          x == null
              ? ""
              : x instanceof Double d ? String.format(Locale.ROOT, "%.6g", d) : x.toString();
      if (s.contains(",") || s.contains("\"") || s.contains("\n")) {
        s = "\"" + s.replace("\"", "\"\"") + "\"";
      }
      b.append(s);
    }
    return b.append('\n').toString();
  }
}
