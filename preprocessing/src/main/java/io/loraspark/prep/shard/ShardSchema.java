package io.loraspark.prep.shard;

import java.util.Arrays;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The one schema of the training shards ({@code shards/part-*.parquet}), shared by the
 * preprocessing job that writes them and the trainer that reads them.
 *
 * <p>One row is one training sequence. {@link #LABELS} are aligned with {@link #INPUT_IDS} as in
 * Hugging Face: the model shifts internally (the logits at position t-1 are scored against {@code
 * labels[t]}), and {@link #IGNORE_INDEX} marks positions that are not scored. {@link #SEGMENT_IDS}
 * numbers the examples packed into the row 1, 2, 3, ... (all 1 when the row holds one example), so
 * a trainer can restart positions and block attention at segment boundaries; the first token of
 * every segment has label {@link #IGNORE_INDEX}, so no label crosses a boundary.
 */
public final class ShardSchema {

  /** Stable hex hash of the normalized example; for packed rows the hash of the member ids. */
  public static final String EXAMPLE_ID = "example_id";

  /** {@link #TRAIN} or {@link #EVAL}. */
  public static final String SPLIT = "split";

  /** Token ids, {@code array<int>} with non-null elements. */
  public static final String INPUT_IDS = "input_ids";

  /** Target ids aligned with {@link #INPUT_IDS}; {@link #IGNORE_INDEX} where not scored. */
  public static final String LABELS = "labels";

  /** 1..n: which packed example each position belongs to; all 1 when not packed. */
  public static final String SEGMENT_IDS = "segment_ids";

  /** Length of {@link #INPUT_IDS}. */
  public static final String NUM_TOKENS = "num_tokens";

  /** Number of labels that are not {@link #IGNORE_INDEX}. */
  public static final String NUM_LABEL_TOKENS = "num_label_tokens";

  /** Number of examples in the row: 1 unless packed. */
  public static final String NUM_EXAMPLES = "num_examples";

  /** Input file name + ":" + line/row number of the (first) example. */
  public static final String SOURCE = "source";

  /** {@link #SPLIT} value of training rows. */
  public static final String TRAIN = "train";

  /** {@link #SPLIT} value of held-out rows. */
  public static final String EVAL = "eval";

  /** Label of a position that is not scored (PyTorch's {@code ignore_index}). */
  public static final int IGNORE_INDEX = -100;

  private static final DataType INT_ARRAY = DataTypes.createArrayType(DataTypes.IntegerType, false);

  /** The shard schema, in column order. */
  public static final StructType SCHEMA =
      new StructType(
          new StructField[] {
            DataTypes.createStructField(EXAMPLE_ID, DataTypes.StringType, false),
            DataTypes.createStructField(SPLIT, DataTypes.StringType, false),
            DataTypes.createStructField(INPUT_IDS, INT_ARRAY, false),
            DataTypes.createStructField(LABELS, INT_ARRAY, false),
            DataTypes.createStructField(SEGMENT_IDS, INT_ARRAY, false),
            DataTypes.createStructField(NUM_TOKENS, DataTypes.IntegerType, false),
            DataTypes.createStructField(NUM_LABEL_TOKENS, DataTypes.IntegerType, false),
            DataTypes.createStructField(NUM_EXAMPLES, DataTypes.IntegerType, false),
            DataTypes.createStructField(SOURCE, DataTypes.StringType, false)
          });

  private ShardSchema() {}

  /**
   * Checks that {@code schema} has exactly the shard columns, in order, with their types.
   * Nullability is not compared: Spark reads every Parquet column and list element back as
   * nullable, although the shards are written with non-null columns and elements.
   *
   * @throws IllegalArgumentException naming the first column that is missing, extra or mistyped
   */
  public static void validate(StructType schema) {
    for (StructField expected : SCHEMA.fields()) {
      if (!Arrays.asList(schema.fieldNames()).contains(expected.name())) {
        throw new IllegalArgumentException(
            "Column " + expected.name() + " is missing; shard columns are " + columns());
      }
      DataType actual = schema.apply(expected.name()).dataType();
      if (!sameIgnoringNullability(actual, expected.dataType())) {
        throw new IllegalArgumentException(
            "Column "
                + expected.name()
                + " must be "
                + expected.dataType().simpleString()
                + " but was "
                + actual.simpleString());
      }
    }
    if (!Arrays.equals(schema.fieldNames(), SCHEMA.fieldNames())) {
      throw new IllegalArgumentException(
          "Shard columns must be exactly " + columns() + " but were " + schema.simpleString());
    }
  }

  private static boolean sameIgnoringNullability(DataType a, DataType b) {
    if (a instanceof ArrayType x && b instanceof ArrayType y) {
      return sameIgnoringNullability(x.elementType(), y.elementType());
    }
    return a.equals(b);
  }

  private static String columns() {
    return String.join(", ", SCHEMA.fieldNames());
  }
}
