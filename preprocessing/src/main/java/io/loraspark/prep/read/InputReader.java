package io.loraspark.prep.read;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * Reads all input files into one RDD of numbered {@link RawRecord}s, whatever their storage format.
 * Nothing here fails on a bad row: unreadable rows carry their reason to the mapping step.
 */
public final class InputReader {

  /** Largest JSON-array file read whole by one task. */
  static final long MAX_JSON_ARRAY_BYTES = Integer.MAX_VALUE - 64;

  private InputReader() {}

  /**
   * The records of the input and how many blank JSONL lines were skipped.
   *
   * @param records every row, in no particular partition order (row numbers define the order)
   * @param blankLines blank lines in JSON-lines files (not rows, only counted)
   */
  public record Input(JavaRDD<RawRecord> records, long blankLines) {}

  /**
   * Reads {@code files}.
   *
   * @param spark the session
   * @param files resolved input files ({@link InputFiles#resolve})
   * @param minPartitions JSON-lines files are split into at least this many partitions (0: Hadoop's
   *     default split size)
   * @throws IllegalArgumentException if a JSON-array file is too big to read whole
   */
  public static Input read(SparkSession spark, List<InputFile> files, int minPartitions) {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    List<JavaRDD<RawRecord>> parts = new ArrayList<>();
    long blank = 0;
    List<InputFile> lines = of(files, FileFormat.JSONL);
    if (!lines.isEmpty()) {
      JsonLinesReader.Result r = JsonLinesReader.read(jsc, lines, minPartitions);
      parts.add(r.records());
      blank = r.blankLines();
    }
    List<InputFile> arrays = of(files, FileFormat.JSON);
    for (InputFile f : arrays) {
      if (f.length() > MAX_JSON_ARRAY_BYTES) {
        throw new IllegalArgumentException(
            f.uri()
                + " is a JSON array larger than 2 GiB, which one task cannot hold; convert it"
                + " to JSON lines (one object per line)");
      }
    }
    if (!arrays.isEmpty()) {
      parts.add(JsonArrayReader.read(jsc, arrays));
    }
    List<InputFile> tables = new ArrayList<>(of(files, FileFormat.PARQUET));
    tables.addAll(of(files, FileFormat.CSV));
    if (!tables.isEmpty()) {
      parts.add(TableReader.read(spark, tables));
    }
    JavaRDD<RawRecord> all =
        parts.size() == 1 ? parts.get(0) : jsc.union(parts.toArray(JavaRDD[]::new));
    return new Input(all, blank);
  }

  private static List<InputFile> of(List<InputFile> files, FileFormat format) {
    return files.stream().filter(f -> f.format() == format).toList();
  }
}
