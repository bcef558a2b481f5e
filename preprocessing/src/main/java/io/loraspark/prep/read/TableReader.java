package io.loraspark.prep.read;

import static org.apache.spark.sql.functions.call_function;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.monotonically_increasing_id;
import static org.apache.spark.sql.functions.struct;
import static org.apache.spark.sql.functions.to_json;

import io.loraspark.prep.schema.RejectReason;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.DataFrameReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Reads Parquet and CSV files with Spark's data sources and turns each row into JSON text ({@code
 * to_json} of all columns, nested ones included), so every format is mapped by the same code.
 *
 * <p>Row numbers: Parquet's {@code _metadata.row_index} + 1; for CSV the data row's position in the
 * file (header excluded), from the file's read order. CSV is read per RFC 4180 (quoted fields may
 * span lines, {@code ""} escapes a quote); rows the parser cannot split into the header's columns
 * become {@link RejectReason#MALFORMED_CSV}. Top-level Parquet string columns are checked with
 * {@code is_valid_utf8}; CSV text is decoded by Spark, which replaces invalid bytes.
 */
final class TableReader {
  static final String CORRUPT = "_corrupt_record";

  private TableReader() {}

  static JavaRDD<RawRecord> read(SparkSession spark, List<InputFile> files) {
    Dataset<Row> all = null;
    Map<Integer, String> names = new HashMap<>();
    for (InputFile f : files) {
      if (f.length() == 0) {
        continue;
      }
      Dataset<Row> one = f.format() == FileFormat.PARQUET ? parquet(spark, f) : csv(spark, f);
      all = all == null ? one : all.union(one);
      names.put(f.index(), f.name());
    }
    if (all == null) {
      return JavaSparkContext.fromSparkContext(spark.sparkContext()).emptyRDD();
    }
    return all.javaRDD().map(new ToRecord(names));
  }

  private static Dataset<Row> parquet(SparkSession spark, InputFile f) {
    Dataset<Row> df = spark.read().parquet(f.uri());
    Column valid = lit(true);
    for (StructField field : df.schema().fields()) {
      if (field.dataType().equals(DataTypes.StringType)) {
        Column ok = call_function("is_valid_utf8", col(quote(field.name())));
        valid = valid.and(ok.isNull().or(ok));
      }
    }
    return select(df, f, col("_metadata.row_index").plus(1), valid, lit(null).cast("string"));
  }

  private static Dataset<Row> csv(SparkSession spark, InputFile f) {
    StructType header = csvReader(spark, f).option("header", "true").csv(f.uri()).schema();
    StructType schema = header.add(CORRUPT, DataTypes.StringType, true);
    // multiLine CSV is not splittable: one file is one partition, read in file order, so the
    // row number is the position in that partition (coalesce(1) makes sure of it).
    Dataset<Row> df =
        csvReader(spark, f)
            .schema(schema)
            .option("header", "true")
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT)
            .csv(f.uri())
            .coalesce(1);
    Column row = monotonically_increasing_id().plus(1);
    return select(df, f, row, lit(true), col(CORRUPT));
  }

  private static DataFrameReader csvReader(SparkSession spark, InputFile f) {
    boolean tsv = f.name().toLowerCase(java.util.Locale.ROOT).matches(".*\\.tsv(\\.[a-z0-9]+)?$");
    return spark
        .read()
        .option("sep", tsv ? "\t" : ",")
        .option("multiLine", "true")
        .option("quote", "\"")
        .option("escape", "\"")
        .option("encoding", "UTF-8");
  }

  private static Dataset<Row> select(
      Dataset<Row> df, InputFile f, Column rowNumber, Column validUtf8, Column corrupt) {
    List<Column> data = new ArrayList<>();
    for (String name : df.columns()) {
      if (!name.equals(CORRUPT)) {
        data.add(col(quote(name)));
      }
    }
    Column json = data.isEmpty() ? lit("{}") : to_json(struct(data.toArray(Column[]::new)));
    return df.select(
        lit(f.index()).as("file_index"),
        rowNumber.cast("long").as("row_number"),
        json.as("raw"),
        validUtf8.as("valid_utf8"),
        corrupt.as("corrupt"));
  }

  private static String quote(String name) {
    return "`" + name.replace("`", "``") + "`";
  }

  /** Row of (file_index, row_number, raw, valid_utf8, corrupt) → record. */
  static final class ToRecord implements Function<Row, RawRecord> {
    private final HashMap<Integer, String> names;

    ToRecord(Map<Integer, String> names) {
      this.names = new HashMap<>(names);
    }

    @Override
    public RawRecord call(Row r) {
      int index = r.getInt(0);
      String file = names.get(index);
      long row = r.getLong(1);
      if (!r.isNullAt(4)) {
        return new RawRecord(
            index,
            file,
            row,
            r.getString(4),
            RejectReason.MALFORMED_CSV,
            "the CSV parser could not split this row into the header's "
                + "columns (unbalanced quotes or a wrong number of fields?)");
      }
      String raw = r.isNullAt(2) ? "{}" : r.getString(2);
      if (!r.getBoolean(3)) {
        return new RawRecord(
            index,
            file,
            row,
            raw,
            RejectReason.INVALID_UTF8,
            "a string column holds bytes that are not valid UTF-8");
      }
      return RawRecord.ok(index, file, row, raw);
    }
  }
}
