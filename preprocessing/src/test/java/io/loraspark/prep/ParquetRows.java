package io.loraspark.prep;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.example.GroupReadSupport;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.catalyst.expressions.GenericRowWithSchema;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Reads a Parquet file in file order with the plain Parquet reader (no Spark job) into Spark rows
 * of a flat schema of strings, ints, longs, booleans and int arrays (Spark's 3-level lists).
 */
public final class ParquetRows {

  private ParquetRows() {}

  /** The rows of {@code file} as {@code schema}. */
  public static List<Row> read(Path file, StructType schema) {
    List<Row> rows = new ArrayList<>();
    try (ParquetReader<Group> reader =
        ParquetReader.builder(
                new GroupReadSupport(), new org.apache.hadoop.fs.Path(file.toString()))
            .build()) {
      for (Group g = reader.read(); g != null; g = reader.read()) {
        Object[] values = new Object[schema.size()];
        for (int i = 0; i < schema.size(); i++) {
          values[i] = value(g, schema.fields()[i]);
        }
        rows.add(new GenericRowWithSchema(values, schema));
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file, e);
    }
    return rows;
  }

  private static Object value(Group g, StructField f) {
    String name = f.name();
    if (g.getFieldRepetitionCount(name) == 0) {
      return null;
    }
    DataType t = f.dataType();
    if (t.equals(DataTypes.StringType)) {
      return g.getString(name, 0);
    }
    if (t.equals(DataTypes.IntegerType)) {
      return g.getInteger(name, 0);
    }
    if (t.equals(DataTypes.LongType)) {
      return g.getLong(name, 0);
    }
    if (t.equals(DataTypes.BooleanType)) {
      return g.getBoolean(name, 0);
    }
    if (t instanceof ArrayType) {
      Group list = g.getGroup(name, 0);
      int n = list.getFieldRepetitionCount("list");
      List<Object> out = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        out.add(list.getGroup("list", i).getInteger("element", 0));
      }
      return CollectionConverters.asScala(out).toSeq();
    }
    throw new IllegalArgumentException("unsupported column type " + t + " of " + name);
  }
}
