package io.loraspark.prep.job;

import static io.loraspark.prep.ShardAssertions.allRows;
import static io.loraspark.prep.ShardAssertions.assertCounts;
import static io.loraspark.prep.ShardAssertions.assertMaskMatchesReplies;
import static io.loraspark.prep.ShardAssertions.assertRowShape;
import static io.loraspark.prep.ShardAssertions.ints;
import static io.loraspark.prep.ShardAssertions.shardsByFile;
import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.prep.ShardAssertions;
import io.loraspark.prep.TestData;
import io.loraspark.prep.shard.Manifest;
import io.loraspark.prep.shard.ShardSchema;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.prep.tokenize.TokenizerCache;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The job over every bundled dataset on local[2], with the real stories260K tokenizer. */
class PreprocessDatasetsTest {
  static final int MAX_SEQ_LEN = 512;

  static SparkSession spark;
  static TextTokenizer tokenizer;

  @TempDir Path tmp;

  @BeforeAll
  static void start() {
    spark = TestData.spark();
    tokenizer = TextTokenizer.load(TestData.STORIES);
  }

  @AfterAll
  static void stop() {
    tokenizer.close();
    spark.stop();
  }

  static Stream<Path> datasets() throws IOException {
    List<Path> files = new ArrayList<>();
    for (Path dir : List.of(TestData.FIXTURE_DATA, TestData.SELF_INSTRUCT)) {
      try (Stream<Path> s = Files.list(dir)) {
        s.filter(p -> p.toString().matches(".*\\.jsonl?$")).sorted().forEach(files::add);
      }
    }
    assertThat(files).as("bundled datasets").hasSizeGreaterThanOrEqualTo(8);
    return files.stream();
  }

  static Manifest run(PreprocessConfig config) {
    return new PreprocessJob(config, s -> {}).run(spark);
  }

  static PreprocessConfig.Builder config(Path input, Path output) {
    return PreprocessConfig.builder(
            input.toString(), TestData.STORIES.toString(), output.toString())
        .maxSeqLen(MAX_SEQ_LEN);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("datasets")
  void writesShardsWhoseMasksAreTheResponses(Path dataset) {
    Path out = tmp.resolve("out");
    int loadsBefore = TokenizerCache.loads();
    Manifest m = run(config(dataset, out).build());

    assertCounts(out, m);
    assertThat(m.accepted()).as("accepted rows of %s", dataset).isGreaterThan(m.inputRows() / 2);
    assertThat(TokenizerCache.loads() - loadsBefore)
        .as("tokenizers loaded by the executors of this JVM (one per JVM, cached)")
        .isLessThanOrEqualTo(1);
    ShardSchema.validate(spark.read().parquet(out.resolve("shards").toString()).schema());
    Map<String, List<String>> replies = ShardAssertions.responses(dataset);
    List<Row> rows = allRows(out);
    for (Row r : rows) {
      assertRowShape(r, MAX_SEQ_LEN);
      assertThat(ints(r, ShardSchema.SEGMENT_IDS)).as("unpacked segment ids").containsOnly(1);
      String source = r.getString(r.fieldIndex(ShardSchema.SOURCE));
      assertThat(replies).as("source %s names an input row", source).containsKey(source);
      assertMaskMatchesReplies(r, replies.get(source), tokenizer, MAX_SEQ_LEN);
      assertThat(ints(r, ShardSchema.INPUT_IDS)[0]).as("BOS first (add_bos_token)").isEqualTo(1);
    }
    assertThat(m.json().path("tokenizer_hash").asText()).isEqualTo(tokenizer.contentHash());
    assertThat(m.json().path("template").asText()).isEqualTo("alpaca");
    assertThat(m.json().path("token_lengths").path("max").asInt()).isLessThanOrEqualTo(MAX_SEQ_LEN);
  }

  @Test
  void splitAndShardsDoNotDependOnRunOrPartitioning() {
    Path input = TestData.FIXTURE_DATA.resolve("alpaca-format-code-alpaca-2k.jsonl");
    Path a = tmp.resolve("a");
    Path b = tmp.resolve("b");
    Manifest ma = run(config(input, a).minPartitions(1).build());
    Manifest mb = run(config(input, b).minPartitions(7).build());

    Map<String, List<Row>> shardsA = shardsByFile(a);
    Map<String, List<Row>> shardsB = shardsByFile(b);
    assertThat(shardsA.keySet())
        .as("shard files")
        .containsExactly(
            "part-00000.parquet", "part-00001.parquet", "part-00002.parquet", "part-00003.parquet");
    assertThat(shardsB.keySet()).isEqualTo(shardsA.keySet());
    for (String shard : shardsA.keySet()) {
      assertThat(rowsAsText(shardsB.get(shard)))
          .as("rows and order of %s with 1 vs 7 input partitions", shard)
          .containsExactlyElementsOf(rowsAsText(shardsA.get(shard)));
    }
    assertThat(mb.examples(ShardSchema.EVAL)).isEqualTo(ma.examples(ShardSchema.EVAL));
    double evalShare = (double) ma.examples(ShardSchema.EVAL) / ma.accepted();
    assertThat(evalShare).as("eval share for eval_fraction 0.1").isBetween(0.07, 0.13);
  }

  @Test
  void seedChangesTheSplit() {
    Path input = TestData.SELF_INSTRUCT.resolve("alpaca-format-self-instruct-seed.jsonl");
    Manifest m1 = run(config(input, tmp.resolve("s1")).evalFraction(0.5).build());
    Manifest m2 = run(config(input, tmp.resolve("s2")).evalFraction(0.5).seed(7).build());
    Map<String, String> split1 = splits(tmp.resolve("s1"));
    Map<String, String> split2 = splits(tmp.resolve("s2"));
    assertThat(split1.keySet()).as("same examples").isEqualTo(split2.keySet());
    long differ =
        split1.keySet().stream().filter(k -> !split1.get(k).equals(split2.get(k))).count();
    assertThat(differ).as("examples whose split changes with the seed").isGreaterThan(20);
    assertThat(m1.json().path("seed").asLong()).isEqualTo(42);
    assertThat(m2.json().path("seed").asLong()).isEqualTo(7);
  }

  @Test
  void packsExamplesWithoutLabelsAcrossBoundaries() {
    Path input = TestData.SELF_INSTRUCT.resolve("alpaca-format-self-instruct-seed.jsonl");
    Path plain = tmp.resolve("plain");
    Path packed = tmp.resolve("packed");
    int capacity = 2048;
    Manifest mp = run(config(input, plain).maxSeqLen(capacity).build());
    Manifest mk = run(config(input, packed).maxSeqLen(capacity).pack(true).build());

    assertCounts(packed, mk);
    assertThat(mk.accepted()).isEqualTo(mp.accepted());
    assertThat(mk.json().path("packing").asBoolean()).isTrue();
    List<Row> rows = allRows(packed);
    assertThat(rows.size()).as("packed rows are fewer").isLessThan((int) mk.accepted() / 3);
    Map<String, String> splitOf = new HashMap<>();
    for (Row r : allRows(plain)) {
      splitOf.put(
          Arrays.toString(ints(r, ShardSchema.INPUT_IDS)),
          r.getString(r.fieldIndex(ShardSchema.SPLIT)));
    }
    List<String> segments = new ArrayList<>();
    for (Row r : rows) {
      int[] ids = ints(r, ShardSchema.INPUT_IDS);
      int[] labels = ints(r, ShardSchema.LABELS);
      int[] seg = ints(r, ShardSchema.SEGMENT_IDS);
      int n = r.getInt(r.fieldIndex(ShardSchema.NUM_EXAMPLES));
      assertThat(ids.length).as("packed row fits").isLessThanOrEqualTo(capacity);
      assertThat(n).as("examples per packed row").isPositive();
      assertThat(seg[0]).isEqualTo(1);
      assertThat(seg[seg.length - 1]).as("last segment id = num_examples").isEqualTo(n);
      for (int i = 0; i < ids.length; i++) {
        if (i > 0) {
          assertThat(seg[i] - seg[i - 1]).as("segment ids step by 0 or 1").isBetween(0, 1);
        }
        if (i == 0 || seg[i] != seg[i - 1]) {
          assertThat(labels[i])
              .as("no label at the first token of segment %d", seg[i])
              .isEqualTo(ShardSchema.IGNORE_INDEX);
          assertThat(ids[i]).as("every segment starts with BOS").isEqualTo(1);
        }
      }
      for (int s = 1; s <= n; s++) {
        final int sid = s;
        int from = (int) Arrays.stream(seg).takeWhile(x -> x < sid).count();
        int to = from + (int) Arrays.stream(seg).filter(x -> x == sid).count();
        String member = Arrays.toString(Arrays.copyOfRange(ids, from, to));
        segments.add(member);
        assertThat(splitOf.get(member))
            .as("a packed row holds one split")
            .isEqualTo(r.getString(r.fieldIndex(ShardSchema.SPLIT)));
      }
    }
    List<String> unpacked =
        allRows(plain).stream()
            .map(r -> Arrays.toString(ints(r, ShardSchema.INPUT_IDS)))
            .collect(Collectors.toList());
    assertThat(segments)
        .as("packed segments are exactly the unpacked examples")
        .containsExactlyInAnyOrderElementsOf(unpacked);
  }

  @Test
  void removesExactDuplicatesKeepingTheFirst() throws IOException {
    List<String> lines =
        Files.readAllLines(TestData.FIXTURE_DATA.resolve("dolly-15k-sample20.jsonl"));
    List<String> data = new ArrayList<>(lines);
    data.add(lines.get(3)); // line 21 repeats line 4
    data.add(lines.get(3)); // line 22 too
    data.add(lines.get(7)); // line 23 repeats line 8
    data.add( // line 24: line 2 with keys in another order and other spacing: same conversation
        "{ \"response\": "
            + new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(lines.get(1))
                .get("response")
            + ", \"instruction\": "
            + new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(lines.get(1))
                .get("instruction")
            + ", \"context\": "
            + new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(lines.get(1))
                .get("context")
            + ", \"category\": \"other\" }");
    Path input = tmp.resolve("dups.jsonl");
    Files.write(input, data);
    Path out = tmp.resolve("out");
    Manifest m = run(config(input, out).evalFraction(0).build());

    assertCounts(out, m);
    assertThat(m.inputRows()).isEqualTo(24);
    assertThat(m.duplicates()).as("duplicates").isEqualTo(4);
    List<String> sources =
        allRows(out).stream().map(r -> r.getString(r.fieldIndex(ShardSchema.SOURCE))).toList();
    assertThat(sources)
        .as("the first occurrence is kept")
        .doesNotContain("dups.jsonl:21", "dups.jsonl:22", "dups.jsonl:23", "dups.jsonl:24");
    assertThat(m.examples(ShardSchema.EVAL)).as("eval_fraction 0").isZero();
  }

  private Map<String, String> splits(Path out) {
    Map<String, String> m = new HashMap<>();
    for (Row r : allRows(out)) {
      m.put(
          r.getString(r.fieldIndex(ShardSchema.EXAMPLE_ID)),
          r.getString(r.fieldIndex(ShardSchema.SPLIT)));
    }
    return m;
  }

  static List<String> rowsAsText(List<Row> rows) {
    return rows.stream()
        .map(
            r -> {
              StringBuilder s = new StringBuilder();
              for (int i = 0; i < r.length(); i++) {
                Object v = r.get(i);
                s.append(
                        v instanceof scala.collection.Seq<?> seq
                            ? seq.mkString(",")
                            : String.valueOf(v))
                    .append('|');
              }
              return s.toString();
            })
        .toList();
  }
}
