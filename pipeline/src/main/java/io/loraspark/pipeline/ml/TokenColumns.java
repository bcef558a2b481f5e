package io.loraspark.pipeline.ml;

import io.loraspark.train.model.TokenRow;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Where a row's tokens are: the positions of the ids, labels and (optional) segment-id columns in a
 * schema, checked once on the driver, then used in tasks to turn rows into {@link TokenRow}s.
 *
 * @param segments position of the segment-id column, or -1 when the rows are not packed
 */
record TokenColumns(String idsName, int ids, String labelsName, int labels, int segments)
    implements Serializable {

  /**
   * Resolves the columns of {@code p} in {@code schema}: ids and labels must exist as array of int;
   * segment ids are used when that column exists (a missing one is an error only when the user set
   * it explicitly).
   *
   * @throws IllegalArgumentException naming the column, its type and the columns present
   */
  static TokenColumns resolve(StructType schema, LoraParams p) {
    int ids = require(schema, p.getInputIdsCol(), "inputIdsCol");
    int labels = require(schema, p.getLabelsCol(), "labelsCol");
    boolean present = Arrays.asList(schema.fieldNames()).contains(p.getSegmentIdsCol());
    int segments =
        present || p.isSet(p.segmentIdsCol())
            ? require(schema, p.getSegmentIdsCol(), "segmentIdsCol")
            : -1;
    return new TokenColumns(p.getInputIdsCol(), ids, p.getLabelsCol(), labels, segments);
  }

  /**
   * Only the token columns of {@code data} (ids, labels, and segment ids when present), so a fit
   * shuffles nothing else to its training task.
   */
  static Dataset<Row> select(Dataset<Row> data, LoraParams p) {
    List<String> names = Arrays.asList(data.schema().fieldNames());
    List<Column> cols = new ArrayList<>();
    cols.add(data.col(p.getInputIdsCol()));
    cols.add(data.col(p.getLabelsCol()));
    if (names.contains(p.getSegmentIdsCol())) {
      cols.add(data.col(p.getSegmentIdsCol()));
    }
    return data.select(cols.toArray(Column[]::new));
  }

  private static int require(StructType schema, String column, String param) {
    DataType t = typeOf(schema, column, param);
    if (!(t instanceof ArrayType a && a.elementType().equals(DataTypes.IntegerType))) {
      throw new IllegalArgumentException(
          "Column " + column + " must be array<int> but was " + t.simpleString());
    }
    return schema.fieldIndex(column);
  }

  /**
   * The type of {@code column}, which the param {@code param} names.
   *
   * @throws IllegalArgumentException naming the column, the param and the columns there are
   */
  static DataType typeOf(StructType schema, String column, String param) {
    if (!Arrays.asList(schema.fieldNames()).contains(column)) {
      throw new IllegalArgumentException(
          "Column "
              + column
              + " ("
              + param
              + ") does not exist; columns are "
              + Arrays.toString(schema.fieldNames()));
    }
    return schema.apply(column).dataType();
  }

  /**
   * The tokens of {@code r}, or null when its ids are null (a row the tokenizer rejected).
   *
   * @throws IllegalArgumentException naming the column when the ids are empty, an array holds a
   *     null, labels are null, or the arrays differ in length
   */
  TokenRow row(Row r) {
    if (r.isNullAt(ids)) {
      return null;
    }
    int[] inputIds = ints(r, ids, idsName);
    if (inputIds.length == 0) {
      throw new IllegalArgumentException("Column " + idsName + " holds an empty array");
    }
    if (r.isNullAt(labels)) {
      throw new IllegalArgumentException(
          "Column " + labelsName + " is null in a row whose " + idsName + " is not");
    }
    int[] segs = segments < 0 || r.isNullAt(segments) ? null : ints(r, segments, "segment ids");
    return new TokenRow(inputIds, ints(r, labels, labelsName), segs);
  }

  /** An array&lt;int&gt; value (a Scala sequence in a Row). */
  private static int[] ints(Row r, int i, String name) {
    List<Integer> list = r.getList(i);
    int[] out = new int[list.size()];
    for (int k = 0; k < out.length; k++) {
      Integer v = list.get(k);
      if (v == null) {
        throw new IllegalArgumentException("Column " + name + " holds a null at index " + k);
      }
      out[k] = v;
    }
    return out;
  }
}
