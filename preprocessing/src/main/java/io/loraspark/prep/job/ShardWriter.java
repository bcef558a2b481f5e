package io.loraspark.prep.job;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.when;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.prep.shard.RejectedSchema;
import io.loraspark.prep.shard.ShardSchema;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.util.HadoopInputFile;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import scala.Tuple2;

/** Writes shards and rejected rows with Spark's Parquet writer and measures what was written. */
final class ShardWriter {

  /** Rejected rows per output file of {@code rejected/}. */
  static final long REJECTED_ROWS_PER_FILE = 1_000_000L;

  private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

  private ShardWriter() {}

  /**
   * Sorts accepted examples into shards (partition i = shard i, rows ordered by {@link
   * ShardKey.Order}), packs them and writes {@code path}.
   */
  static void writeShards(
      SparkSession spark,
      JavaRDD<Outcome> tokenized,
      int shards,
      int maxSeqLen,
      boolean pack,
      String path) {
    JavaRDD<Row> rows =
        tokenized
            .filter(o -> o instanceof Outcome.Tokenized)
            .mapToPair(
                o -> {
                  Outcome.Tokenized t = (Outcome.Tokenized) o;
                  ShardKey k = new ShardKey(t.shard(), t.eval() ? 1 : 0, t.order(), t.exampleId());
                  return new Tuple2<>(k, t);
                })
            .repartitionAndSortWithinPartitions(new ShardKey.ByShard(shards), new ShardKey.Order())
            .mapPartitions(new PackRows(maxSeqLen, pack));
    Dataset<Row> df = spark.createDataFrame(rows, ShardSchema.SCHEMA);
    ShardSchema.validate(df.schema());
    df.write().mode(SaveMode.ErrorIfExists).parquet(path);
  }

  /** Writes the rejected rows of every step, ordered by input file and row number. */
  static void writeRejected(
      SparkSession spark, JavaRDD<Outcome> rejected, long count, String path) {
    int files =
        (int)
            Math.max(
                1, Math.min(1000, (count + REJECTED_ROWS_PER_FILE - 1) / REJECTED_ROWS_PER_FILE));
    JavaRDD<Row> rows =
        rejected
            .filter(o -> o instanceof Outcome.Rejected)
            .map(o -> (Outcome.Rejected) o)
            .sortBy(r -> ((long) r.fileIndex() << 40) | r.rowNumber(), true, files)
            .map(Outcome.Rejected::toRow);
    spark
        .createDataFrame(rows, RejectedSchema.SCHEMA)
        .write()
        .mode(SaveMode.ErrorIfExists)
        .parquet(path);
  }

  /**
   * Rows, examples, tokens and scored tokens per split, read back from the written shards (the
   * counts identity is checked against what is on disk, not what was meant to be written).
   */
  static ObjectNode splitStats(SparkSession spark, String path, boolean hasFiles) {
    ObjectNode out = JSON.objectNode();
    for (String split : new String[] {ShardSchema.TRAIN, ShardSchema.EVAL}) {
      out.putObject(split)
          .put("rows", 0L)
          .put("examples", 0L)
          .put("tokens", 0L)
          .put("label_tokens", 0L);
    }
    if (!hasFiles) {
      return out;
    }
    Dataset<Row> shards = spark.read().parquet(path);
    ShardSchema.validate(shards.schema());
    Column isTrain = col(ShardSchema.SPLIT).equalTo(ShardSchema.TRAIN);
    Row r =
        shards
            .agg(
                sum(when(isTrain, 1L).otherwise(0L)),
                sum(when(isTrain, col(ShardSchema.NUM_EXAMPLES)).otherwise(0)),
                sum(when(isTrain, col(ShardSchema.NUM_TOKENS)).otherwise(0)),
                sum(when(isTrain, col(ShardSchema.NUM_LABEL_TOKENS)).otherwise(0)),
                count(lit(1)),
                sum(col(ShardSchema.NUM_EXAMPLES)),
                sum(col(ShardSchema.NUM_TOKENS)),
                sum(col(ShardSchema.NUM_LABEL_TOKENS)))
            .first();
    for (int i = 0; i < 4; i++) {
      String key = new String[] {"rows", "examples", "tokens", "label_tokens"}[i];
      long train = r.isNullAt(i) ? 0 : r.getLong(i);
      long all = r.isNullAt(i + 4) ? 0 : r.getLong(i + 4);
      ((ObjectNode) out.get(ShardSchema.TRAIN)).put(key, train);
      ((ObjectNode) out.get(ShardSchema.EVAL)).put(key, all - train);
    }
    return out;
  }

  /** Number of rows in written Parquet files, from their footers. */
  static long rows(List<FileStatus> parts, Configuration conf) {
    long n = 0;
    for (FileStatus f : parts) {
      try (ParquetFileReader reader =
          ParquetFileReader.open(HadoopInputFile.fromPath(f.getPath(), conf))) {
        n += reader.getRecordCount();
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read the footer of " + f.getPath(), e);
      }
    }
    return n;
  }
}
