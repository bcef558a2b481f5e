package io.loraspark.train.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.model.TokenRow;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.util.HadoopInputFile;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Reading shards that Spark itself wrote with the preprocessing schema, through Hadoop + Parquet
 * only (a fresh Hadoop Configuration, no SparkSession on the read side).
 */
class ShardReaderTest {

  static final DataType INTS = DataTypes.createArrayType(DataTypes.IntegerType, true);

  /** The shard schema as preprocessing declares it (ids, labels, segments, split, and extras). */
  static final StructType SCHEMA = schema(INTS, true);

  static final Configuration CONF = new Configuration();

  static SparkSession spark;

  @TempDir Path tmp;

  @BeforeAll
  static void startSpark() {
    spark =
        SparkSession.builder()
            .master("local[1]")
            .appName("ShardReaderTest")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "1")
            .getOrCreate();
  }

  @AfterAll
  static void stopSpark() {
    spark.stop();
  }

  // Five rows; two of them packed (segments 1,1,2,2,2 and 1,2,2), both splits.
  static final List<Object[]> ROWS =
      List.of(
          row("a", "train", ints(5, 6, 7), ints(-100, 6, 7), ints(1, 1, 1)),
          row("b+c", "train", ints(1, 2, 3, 4, 5), ints(-100, 2, -100, 4, 5), ints(1, 1, 2, 2, 2)),
          row("d", "eval", ints(9, 8), ints(-100, 8), ints(1, 1)),
          row("e", "train", ints(11, 12, 13, 14), ints(-100, -100, 13, 14), ints(1, 1, 1, 1)),
          row("f+g", "eval", ints(21, 22, 23), ints(-100, -100, 23), ints(1, 2, 2)));

  @Test
  void shardRoundTripsThroughParquetFromRootShardsDirAndFileUri() throws IOException {
    Path shards = write(tmp.resolve("out/shards"), SCHEMA, ROWS, 2);
    assertThat(parquetSchema(firstShard(shards)))
        .as("Spark wrote the standard 3-level LIST")
        .contains("optional group input_ids (LIST)")
        .contains("repeated group list")
        .contains("optional int32 element");

    List<String> fromRoot = ShardReader.shardFiles(tmp.resolve("out").toString(), CONF);
    List<String> fromShards = ShardReader.shardFiles(shards.toString(), CONF);
    List<String> fromUri = ShardReader.shardFiles(tmp.resolve("out").toUri().toString(), CONF);
    List<String> fromShortUri = ShardReader.shardFiles("file:" + shards, CONF);

    assertThat(fromRoot).as("two part files, _SUCCESS and .crc ignored").hasSize(2);
    assertThat(fromRoot.get(0)).startsWith("file:").contains("/shards/part-00000");
    assertThat(fromRoot.get(1)).contains("/shards/part-00001");
    assertThat(fromShards).as("shards/ dir").isEqualTo(fromRoot);
    assertThat(fromUri).as("file:/// URI of the root").isEqualTo(fromRoot);
    assertThat(fromShortUri).as("file: URI of shards/").isEqualTo(fromRoot);

    ShardReader.Shards read = ShardReader.read(fromRoot, CONF);

    assertThat(describe(read.train()))
        .as("train rows in file order then row order")
        .containsExactly(describe(ROWS.get(0)), describe(ROWS.get(1)), describe(ROWS.get(3)));
    assertThat(describe(read.eval()))
        .as("eval rows")
        .containsExactly(describe(ROWS.get(2)), describe(ROWS.get(4)));
    assertThat(read.train().get(1).examples()).as("packed row holds two examples").isEqualTo(2);
  }

  @Test
  void readsLegacyTwoLevelListsAndASingleFileUri() throws IOException {
    spark.conf().set("spark.sql.parquet.writeLegacyFormat", "true");
    Path shards;
    try {
      shards =
          write(
              tmp.resolve("legacy"),
              schema(DataTypes.createArrayType(DataTypes.IntegerType, false), true),
              ROWS,
              1);
    } finally {
      spark.conf().unset("spark.sql.parquet.writeLegacyFormat");
    }
    Path file = firstShard(shards);
    assertThat(parquetSchema(file)).as("legacy 2-level LIST").contains("repeated int32 array");

    List<String> files = ShardReader.shardFiles(file.toString(), CONF);
    ShardReader.Shards read = ShardReader.read(files, CONF);

    assertThat(files).containsExactly("file:" + file);
    assertThat(describe(read.train()))
        .containsExactly(describe(ROWS.get(0)), describe(ROWS.get(1)), describe(ROWS.get(3)));
    assertThat(describe(read.eval())).containsExactly(describe(ROWS.get(2)), describe(ROWS.get(4)));
  }

  @Test
  void rejectsMissingDirectory() {
    String missing = tmp.resolve("nope").toString();

    assertThatThrownBy(() -> ShardReader.shardFiles(missing, CONF))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(missing + " does not exist")
        .hasMessageContaining("expected the preprocess output root (containing shards/)");
  }

  @Test
  void rejectsEmptyShardsDirectory() throws IOException {
    Path shards = Files.createDirectories(tmp.resolve("out/shards"));
    Files.writeString(shards.resolve("_SUCCESS"), "");
    String root = tmp.resolve("out").toString();

    assertThatThrownBy(() -> ShardReader.shardFiles(root, CONF))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(root + ": no *.parquet files in file:" + shards)
        .hasMessageContaining("run preprocess first");
  }

  @Test
  void rejectsShardLackingLabelsColumn() {
    StructType noLabels = new StructType();
    for (var f : SCHEMA.fields()) {
      if (!f.name().equals("labels")) {
        noLabels = noLabels.add(f);
      }
    }
    List<Object[]> rows = new ArrayList<>();
    for (Object[] r : ROWS) {
      rows.add(new Object[] {r[0], r[1], r[3], r[4], r[5], r[6], r[7], r[8]});
    }
    Path shards = write(tmp.resolve("nolabels"), noLabels, rows, 1);
    List<String> files = ShardReader.shardFiles(shards.toString(), CONF);

    assertThatThrownBy(() -> ShardReader.read(files, CONF))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            files.get(0)
                + " has no column labels; columns found: [example_id, input_ids, segment_ids,"
                + " num_tokens, num_label_tokens, num_examples, source, split]; a shard needs"
                + " [input_ids, labels, segment_ids, split] as written by preprocess");
  }

  @Test
  void rejectsColumnOfTheWrongType() {
    StructType longs = schema(DataTypes.createArrayType(DataTypes.LongType, true), true);
    List<Object[]> rows = new ArrayList<>();
    for (Object[] r : ROWS) {
      Object[] copy = r.clone();
      for (int c = 1; c <= 3; c++) {
        copy[c] = ((List<?>) r[c]).stream().map(x -> ((Integer) x).longValue()).toList();
      }
      rows.add(copy);
    }
    Path shards = write(tmp.resolve("longs"), longs, rows, 1);
    List<String> files = ShardReader.shardFiles(shards.toString(), CONF);

    assertThatThrownBy(() -> ShardReader.read(files, CONF))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith(
            "Column input_ids in " + files.get(0) + " must be array<int> but was")
        .hasMessageContaining("int64");
  }

  @Test
  void rejectsBadRowsNamingFileAndRow() {
    Object[] mismatched = row("x", "train", ints(1, 2, 3), ints(-100, 2), ints(1, 1, 1));
    Object[] nullSegments = row("y", "eval", ints(1, 2), ints(-100, 2), null);
    Object[] badSplit = row("z", "test", ints(1, 2), ints(-100, 2), ints(1, 1));
    Object[] badSegments = row("w", "train", ints(1, 2), ints(-100, 2), ints(1, 3));

    assertThatThrownBy(() -> readOne("m", List.<Object[]>of(ROWS.get(0), mismatched)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(" row 1: labels has 2 entries but input_ids has 3");
    assertThatThrownBy(() -> readOne("n", List.<Object[]>of(nullSegments)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(" row 0: segment_ids is null");
    assertThatThrownBy(() -> readOne("s", List.<Object[]>of(badSplit)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(" row 0: split must be \"train\" or \"eval\" but was \"test\"");
    assertThatThrownBy(() -> readOne("g", List.<Object[]>of(badSegments)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(" row 0: segment_ids must count up by 0 or 1");
    assertThatThrownBy(() -> readOne("g2", List.<Object[]>of(badSegments)))
        .hasMessageContaining(tmp.resolve("g2").toString() + "/part-00000");
  }

  @Test
  void rowsOutsideTheModelsLimitsAreRejectedNamingFileAndRow() {
    Path shards = write(tmp.resolve("limits"), SCHEMA, ROWS, 1);
    List<String> files = ShardReader.shardFiles(shards.toString(), CONF);

    assertThat(ShardReader.read(files, CONF, new TokenLimits(24, 4)).train())
        .as("ids < 24 and examples of at most 4 tokens fit")
        .hasSize(3);
    assertThatThrownBy(() -> ShardReader.read(files, CONF, new TokenLimits(21, 5)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("part-00000")
        .hasMessageContaining(" row 4: input_ids[0] is 21, outside the model's vocabulary [0, 21)");
    assertThatThrownBy(() -> ShardReader.read(files, CONF, new TokenLimits(100, 2)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(" row 0: the row has 3 tokens but the model takes at most 2");
  }

  // --- helpers ---

  static StructType schema(DataType intArray, boolean nullable) {
    return new StructType()
        .add("example_id", DataTypes.StringType, false)
        .add("input_ids", intArray, nullable)
        .add("labels", intArray, nullable)
        .add("segment_ids", intArray, nullable)
        .add("num_tokens", DataTypes.IntegerType, false)
        .add("num_label_tokens", DataTypes.IntegerType, false)
        .add("num_examples", DataTypes.IntegerType, false)
        .add("source", DataTypes.StringType, true)
        .add("split", DataTypes.StringType, false);
  }

  static List<Integer> ints(int... v) {
    return Arrays.stream(v).boxed().toList();
  }

  /** One row in {@link #schema} column order. */
  static Object[] row(
      String id, String split, List<Integer> ids, List<Integer> labels, List<Integer> segs) {
    int numLabels = (int) labels.stream().filter(l -> l != -100).count();
    int examples = segs == null ? 1 : segs.get(segs.size() - 1);
    return new Object[] {id, ids, labels, segs, ids.size(), numLabels, examples, "test", split};
  }

  /** Writes {@code rows} as Parquet under {@code dir} in {@code partitions} part files. */
  static Path write(Path dir, StructType schema, List<Object[]> rows, int partitions) {
    List<Row> sparkRows = rows.stream().map(ShardReaderTest::sparkRow).toList();
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    spark
        .createDataFrame(jsc.parallelize(sparkRows, partitions), schema)
        .write()
        .parquet(dir.toString());
    return dir;
  }

  /** A Spark row: Java lists become Scala Seqs, the external type of array columns. */
  static Row sparkRow(Object[] values) {
    Object[] converted = values.clone();
    for (int i = 0; i < converted.length; i++) {
      if (converted[i] instanceof List<?> list) {
        converted[i] = CollectionConverters.asScala(list).toSeq();
      }
    }
    return RowFactory.create(converted);
  }

  ShardReader.Shards readOne(String name, List<Object[]> rows) {
    Path shards = write(tmp.resolve(name), SCHEMA, rows, 1);
    return ShardReader.read(ShardReader.shardFiles(shards.toString(), CONF), CONF);
  }

  static Path firstShard(Path dir) throws IOException {
    try (var files = Files.list(dir)) {
      return files
          .filter(p -> p.getFileName().toString().startsWith("part-"))
          .filter(p -> p.toString().endsWith(".parquet"))
          .sorted()
          .findFirst()
          .orElseThrow();
    }
  }

  static String parquetSchema(Path file) throws IOException {
    try (ParquetFileReader r =
        ParquetFileReader.open(
            HadoopInputFile.fromPath(new org.apache.hadoop.fs.Path(file.toUri()), CONF))) {
      return r.getFooter().getFileMetaData().getSchema().toString();
    }
  }

  @SuppressWarnings("unchecked")
  static String describe(Object[] row) {
    return seq((List<Integer>) row[1])
        + "|"
        + seq((List<Integer>) row[2])
        + "|"
        + seq((List<Integer>) row[3]);
  }

  static List<String> describe(List<TokenRow> rows) {
    return rows.stream()
        .map(
            r ->
                seq(ints(r.inputIds()))
                    + "|"
                    + seq(ints(r.labels()))
                    + "|"
                    + seq(ints(r.segmentIds())))
        .toList();
  }

  static String seq(List<Integer> v) {
    return v.toString();
  }
}
