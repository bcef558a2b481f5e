package io.loraspark.prep.shard;

import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Schema of {@code rejected/}: one row per input row that could not be used, with where it came
 * from, why, and its raw text (cut at a limit; {@link #RAW_TRUNCATED} and {@link #RAW_LENGTH} say
 * when and by how much).
 */
public final class RejectedSchema {

  /** Input file, relative to the input root. */
  public static final String SOURCE_FILE = "source_file";

  /** 1-based line (JSONL), element (JSON array) or row (CSV, Parquet) number. */
  public static final String ROW_NUMBER = "row_number";

  /** {@link #SOURCE_FILE} + ":" + {@link #ROW_NUMBER}, as in the shards. */
  public static final String SOURCE = "source";

  /** Reason code, one of {@link io.loraspark.prep.schema.RejectReason}'s codes. */
  public static final String REASON = "reason";

  /** Human-readable detail: which field, which value, what would be valid. */
  public static final String MESSAGE = "message";

  /** The row's raw text (invalid UTF-8 replaced by U+FFFD), possibly cut. */
  public static final String RAW = "raw";

  /** Length of the full raw text in chars. */
  public static final String RAW_LENGTH = "raw_length";

  /** Whether {@link #RAW} was cut. */
  public static final String RAW_TRUNCATED = "raw_truncated";

  /** The rejected-rows schema, in column order. */
  public static final StructType SCHEMA =
      new StructType(
          new StructField[] {
            DataTypes.createStructField(SOURCE_FILE, DataTypes.StringType, false),
            DataTypes.createStructField(ROW_NUMBER, DataTypes.LongType, false),
            DataTypes.createStructField(SOURCE, DataTypes.StringType, false),
            DataTypes.createStructField(REASON, DataTypes.StringType, false),
            DataTypes.createStructField(MESSAGE, DataTypes.StringType, false),
            DataTypes.createStructField(RAW, DataTypes.StringType, true),
            DataTypes.createStructField(RAW_LENGTH, DataTypes.IntegerType, false),
            DataTypes.createStructField(RAW_TRUNCATED, DataTypes.BooleanType, false)
          });

  private RejectedSchema() {}
}
