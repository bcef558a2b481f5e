package io.loraspark.prep.job;

import static io.loraspark.prep.ShardAssertions.allRows;
import static io.loraspark.prep.ShardAssertions.assertCounts;
import static io.loraspark.prep.ShardAssertions.assertRowShape;
import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.prep.ShardAssertions;
import io.loraspark.prep.TestData;
import io.loraspark.prep.shard.Manifest;
import io.loraspark.prep.shard.RejectedSchema;
import io.loraspark.prep.shard.ShardSchema;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A deliberately messy JSONL file: every bad row lands in rejected/ with its reason. */
class MessyInputTest {
  static SparkSession spark;

  @TempDir Path tmp;

  @BeforeAll
  static void start() {
    spark = TestData.spark();
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  static final String GOOD_1 =
      "{\"instruction\": \"Name a color.\", \"input\": \"\", \"output\": \"Blue is a color.\"}";
  static final String GOOD_2 =
      "{\"instruction\": \"Add the numbers.\", \"input\": \"2 and 3\", \"output\": \"5\"}";
  static final String GOOD_3 = "{\"instruction\": \"Say hi.\", \"output\": \"Hi!\"}";

  @Test
  void rejectsEveryBadRowWithItsReason() throws Exception {
    ByteArrayOutputStream data = new ByteArrayOutputStream();
    String tooLong =
        "{\"instruction\": \"Tell a story.\", \"output\": \"" + "zqx! Zqj? ".repeat(150) + "\"}";
    String[] lines = {
      GOOD_1, // 1
      "{\"instruction\": \"a\", \"output\": \"b\",}", // 2 trailing comma
      "{instruction: \"a\", \"output\": \"b\"}", // 3 unquoted key
      null, // 4 invalid UTF-8, written below
      "{\"instruction\": \"Name a fruit.\", \"input\": \"\"}", // 5 missing output
      "{\"instruction\": \"   \", \"output\": \"b\"}", // 6 empty instruction
      "{\"instruction\": \"Count.\", \"output\": 42}", // 7 wrong type
      tooLong, // 8 too long
      GOOD_1, // 9 exact duplicate of line 1
      GOOD_2, // 10
      "", // 11 blank line: skipped, counted
      "// a comment", // 12
      "[1, 2]", // 13 not an object
      "{'instruction': 'a', 'output': 'b'}", // 14 single quotes
      "{\"instruction\": \"a\", \"instruction\": \"b\", \"output\": \"c\"}", // 15 duplicate key
      "{\"instruction\": \"x\", \"output\": \"y\"} {\"more\": 1}", // 16 trailing content
      GOOD_3 + "\r", // 17 CRLF line end: fine
      "{\"instruction\": null, \"output\": \"y\"}", // 18 null instruction
      "{\"instruction\": \"x\", \"output\": \"y\", \"input\": [1]}", // 19 wrong type of optional
      // input
    };
    for (String line : lines) {
      if (line == null) {
        data.write("{\"instruction\": \"caf".getBytes(StandardCharsets.UTF_8));
        data.write(new byte[] {(byte) 0xC3, (byte) 0x28, (byte) 0xFF});
        data.write("\", \"output\": \"x\"}".getBytes(StandardCharsets.UTF_8));
      } else {
        data.write(line.getBytes(StandardCharsets.UTF_8));
      }
      data.write('\n');
    }
    Path input = tmp.resolve("messy.jsonl");
    Files.write(input, data.toByteArray());
    Path out = tmp.resolve("out");
    Manifest m =
        new PreprocessJob(
                PreprocessConfig.builder(
                        input.toString(), TestData.STORIES.toString(), out.toString())
                    .maxSeqLen(512)
                    .onTooLong(TooLongPolicy.REJECT)
                    .build(),
                s -> {})
            .run(spark);

    assertCounts(out, m);
    assertThat(m.inputRows()).as("rows (the blank line is not a row)").isEqualTo(18);
    assertThat(m.json().path("blank_lines").asLong()).isEqualTo(1);
    assertThat(m.duplicates()).isEqualTo(1);
    assertThat(
            allRows(out).stream()
                .map(r -> r.getString(r.fieldIndex(ShardSchema.SOURCE)))
                .sorted()
                .toList())
        .as("accepted rows")
        .containsExactly("messy.jsonl:1", "messy.jsonl:10", "messy.jsonl:17");
    assertThat(m.accepted()).isEqualTo(3);
    Map<Long, String> reasons = new TreeMap<>();
    for (Row r : ShardAssertions.rejected(out)) {
      reasons.put(
          r.getLong(r.fieldIndex(RejectedSchema.ROW_NUMBER)),
          r.getString(r.fieldIndex(RejectedSchema.REASON)));
      assertThat(r.getString(r.fieldIndex(RejectedSchema.SOURCE_FILE))).isEqualTo("messy.jsonl");
      assertThat(r.getString(r.fieldIndex(RejectedSchema.MESSAGE))).as("a message").isNotBlank();
    }
    assertThat(reasons)
        .as("reason by line")
        .containsExactlyEntriesOf(
            new TreeMap<>(
                Map.ofEntries(
                    Map.entry(2L, "malformed_json"),
                    Map.entry(3L, "malformed_json"),
                    Map.entry(4L, "invalid_utf8"),
                    Map.entry(5L, "missing_field"),
                    Map.entry(6L, "empty_field"),
                    Map.entry(7L, "wrong_type"),
                    Map.entry(8L, "too_long"),
                    Map.entry(12L, "malformed_json"),
                    Map.entry(13L, "not_an_object"),
                    Map.entry(14L, "malformed_json"),
                    Map.entry(15L, "malformed_json"),
                    Map.entry(16L, "malformed_json"),
                    Map.entry(18L, "missing_field"),
                    Map.entry(19L, "wrong_type"))));
    assertThat(m.rejectedByReason())
        .containsEntry("malformed_json", 6L)
        .containsEntry("missing_field", 2L)
        .containsEntry("wrong_type", 2L);
    Row utf8 = rejectedAt(out, 4);
    assertThat(utf8.getString(utf8.fieldIndex(RejectedSchema.RAW)))
        .as("raw text kept, lossily")
        .contains("caf");
    assertThat(utf8.getString(utf8.fieldIndex(RejectedSchema.MESSAGE))).contains("byte 21");
    Row trailing = rejectedAt(out, 2);
    assertThat(trailing.getString(trailing.fieldIndex(RejectedSchema.RAW)))
        .isEqualTo("{\"instruction\": \"a\", \"output\": \"b\",}");
    assertThat(rejectedAt(out, 7).getString(rejectedAt(out, 7).fieldIndex(RejectedSchema.MESSAGE)))
        .contains("\"output\"")
        .contains("number");
    assertThat(rejectedAt(out, 8).getString(rejectedAt(out, 8).fieldIndex(RejectedSchema.MESSAGE)))
        .contains("max_seq_len 512");
    List<String> sources =
        allRows(out).stream()
            .map(r -> r.getString(r.fieldIndex(ShardSchema.SOURCE)))
            .sorted()
            .toList();
    assertThat(sources).containsExactly("messy.jsonl:1", "messy.jsonl:10", "messy.jsonl:17");
    allRows(out).forEach(r -> assertRowShape(r, 512));
  }

  @Test
  void truncatesLongRowsByDefaultAndCutsLongRawText() throws Exception {
    String tooLong =
        "{\"instruction\": \"Tell a story.\", \"output\": \""
            + "Once upon a time. ".repeat(60)
            + "\"}";
    String longPrompt =
        "{\"instruction\": \"" + "Why? ".repeat(200) + "\", \"output\": \"Because.\"}";
    Path input = tmp.resolve("long.jsonl");
    Files.writeString(input, String.join("\n", GOOD_1, tooLong, longPrompt) + "\n");
    Path out = tmp.resolve("out");
    Manifest m =
        new PreprocessJob(
                PreprocessConfig.builder(
                        input.toString(), TestData.STORIES.toString(), out.toString())
                    .maxSeqLen(256)
                    .rawLimit(100)
                    .build(),
                s -> {})
            .run(spark);

    assertCounts(out, m);
    assertThat(m.accepted()).isEqualTo(2);
    assertThat(m.json().path("truncated").asLong()).isEqualTo(1);
    assertThat(m.rejectedByReason()).containsExactly(Map.entry("too_long", 1L));
    Row rejected = rejectedAt(out, 3);
    assertThat(rejected.getString(rejected.fieldIndex(RejectedSchema.MESSAGE)))
        .contains("no response token");
    assertThat(rejected.getString(rejected.fieldIndex(RejectedSchema.RAW))).hasSize(100);
    assertThat(rejected.getBoolean(rejected.fieldIndex(RejectedSchema.RAW_TRUNCATED))).isTrue();
    assertThat(rejected.getInt(rejected.fieldIndex(RejectedSchema.RAW_LENGTH)))
        .isEqualTo(longPrompt.length());
    Row truncated =
        allRows(out).stream()
            .filter(r -> r.getString(r.fieldIndex(ShardSchema.SOURCE)).equals("long.jsonl:2"))
            .findFirst()
            .orElseThrow();
    assertThat(truncated.getInt(truncated.fieldIndex(ShardSchema.NUM_TOKENS))).isEqualTo(256);
  }

  @Test
  void aFileOfOnlyBadRowsGivesEmptyShardsAndAFullRejectedList() throws Exception {
    Path input = tmp.resolve("bad.jsonl");
    Files.writeString(input, "{\"instruction\": \"a\"}\n{\"instruction\": \"a\", \"output\": 1}\n");
    Path out = tmp.resolve("out");
    Manifest m =
        new PreprocessJob(
                PreprocessConfig.builder(
                        input.toString(), TestData.STORIES.toString(), out.toString())
                    .build(),
                s -> {})
            .run(spark);
    assertThat(m.accepted()).isZero();
    assertThat(m.rejected()).isEqualTo(2);
    assertCounts(out, m);
    assertThat(Files.exists(out.resolve("manifest.json"))).isTrue();
  }

  @Test
  void refusesAnOutputInsideTheInput() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("data"));
    Files.writeString(dir.resolve("a.jsonl"), GOOD_1 + "\n");
    Files.createDirectories(dir.resolve("out/shards"));
    Files.writeString(dir.resolve("out/shards/x.jsonl"), GOOD_1 + "\n");
    PreprocessConfig config =
        PreprocessConfig.builder(
                dir.toString(), TestData.STORIES.toString(), dir.resolve("out").toString())
            .build();
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> PreprocessJob.precheck(config))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("includes the output directory");
  }

  private Row rejectedAt(Path out, long row) {
    return ShardAssertions.rejected(out).stream()
        .filter(r -> r.getLong(r.fieldIndex(RejectedSchema.ROW_NUMBER)) == row)
        .findFirst()
        .orElseThrow();
  }
}
