package io.loraspark.prep.job;

import static io.loraspark.prep.ShardAssertions.allRows;
import static io.loraspark.prep.ShardAssertions.assertCounts;
import static io.loraspark.prep.ShardAssertions.assertMaskMatchesReplies;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.prep.ShardAssertions;
import io.loraspark.prep.TestData;
import io.loraspark.prep.read.FileFormat;
import io.loraspark.prep.schema.ColumnMapping;
import io.loraspark.prep.shard.Manifest;
import io.loraspark.prep.shard.RejectedSchema;
import io.loraspark.prep.shard.ShardSchema;
import io.loraspark.prep.tokenize.TextTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Parquet and CSV inputs, nested columns, user column mappings and format overrides. */
class TableInputTest {
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

  static Manifest run(PreprocessConfig config) {
    return new PreprocessJob(config, s -> {}).run(spark);
  }

  @Test
  void readsParquetFilesWithRowNumbers() {
    Path source = TestData.FIXTURE_DATA.resolve("alpaca-format-dolly-sample20.jsonl");
    Path parquet = tmp.resolve("dolly-parquet");
    spark.read().json(source.toString()).coalesce(1).write().parquet(parquet.toString());
    Path out = tmp.resolve("out");
    Manifest m =
        run(
            PreprocessConfig.builder(
                    parquet.toString(), TestData.STORIES.toString(), out.toString())
                .build());

    assertCounts(out, m);
    assertThat(m.inputRows()).isEqualTo(20);
    assertThat(m.json().path("input_files").get(0).path("format").asText()).isEqualTo("parquet");
    assertThat(m.json().path("record_format").asText()).isEqualTo("alpaca");
    Map<String, String> byRow =
        ShardAssertions.responses(source).entrySet().stream()
            .collect(
                Collectors.toMap(e -> e.getKey().replaceAll(".*:", ""), e -> e.getValue().get(0)));
    for (Row r : allRows(out)) {
      String src = r.getString(r.fieldIndex(ShardSchema.SOURCE));
      assertThat(src).matches("part-00000-.*\\.parquet:\\d+");
      assertMaskMatchesReplies(r, List.of(byRow.get(src.replaceAll(".*:", ""))), tokenizer, 512);
    }
  }

  @Test
  void readsNestedMessagesFromParquet() throws Exception {
    Path json = tmp.resolve("messages.jsonl");
    Files.write(
        json,
        List.of(
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello!\"},"
                + " {\"role\": \"user\", \"content\": \"Name a pet.\"}, {\"role\": \"assistant\", \"content\": \"A cat.\"}]}",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}"));
    Path parquet = tmp.resolve("messages.parquet");
    spark.read().json(json.toString()).coalesce(1).write().parquet(parquet.toString());
    Path out = tmp.resolve("out");
    Manifest m =
        run(
            PreprocessConfig.builder(
                    parquet.toString(), TestData.STORIES.toString(), out.toString())
                .build());

    assertCounts(out, m);
    assertThat(m.json().path("record_format").asText()).isEqualTo("messages");
    assertThat(m.rejectedByReason()).containsOnly(Map.entry("invalid_conversation", 1L));
    Row r = allRows(out).get(0);
    assertMaskMatchesReplies(r, List.of("Hello!", "A cat."), tokenizer, 512);
  }

  @Test
  void readsCsvWithAColumnMappingAndRejectsBrokenRows() throws Exception {
    Path csv = tmp.resolve("qa.csv");
    Files.writeString(
        csv,
        "question,answer,notes\n"
            + "What is a cat?,\"A small animal, often a pet.\",x\n"
            + "Write two lines.,\"Line one\nLine two\",y\n"
            + "Quote this,\"She said \"\"hi\"\".\",z\n"
            + "Empty answer,,w\n"
            + "Too,many,fields,here,now\n");
    Path out = tmp.resolve("out");
    Manifest m =
        run(
            PreprocessConfig.builder(csv.toString(), TestData.STORIES.toString(), out.toString())
                .columns(ColumnMapping.parse("prompt=question,response=answer"))
                .build());

    assertCounts(out, m);
    assertThat(m.inputRows()).isEqualTo(5);
    assertThat(m.json().path("record_format").asText()).startsWith("columns");
    Map<String, List<String>> replies =
        Map.of(
            "qa.csv:1", List.of("A small animal, often a pet."),
            "qa.csv:2", List.of("Line one\nLine two"),
            "qa.csv:3", List.of("She said \"hi\"."));
    List<Row> rows = allRows(out);
    assertThat(
            rows.stream()
                .map(r -> r.getString(r.fieldIndex(ShardSchema.SOURCE)))
                .collect(Collectors.toSet()))
        .isEqualTo(replies.keySet());
    for (Row r : rows) {
      assertMaskMatchesReplies(
          r, replies.get(r.getString(r.fieldIndex(ShardSchema.SOURCE))), tokenizer, 512);
    }
    Set<String> rejected =
        ShardAssertions.rejected(out).stream()
            .map(
                r ->
                    r.getString(r.fieldIndex(RejectedSchema.SOURCE))
                        + "="
                        + r.getString(r.fieldIndex(RejectedSchema.REASON)))
            .collect(Collectors.toSet());
    assertThat(rejected)
        .containsExactlyInAnyOrder("qa.csv:4=missing_field", "qa.csv:5=malformed_csv");
  }

  @Test
  void inputFormatOverrideAndDirectoriesOfMixedFiles() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("in"));
    Files.copy(
        TestData.FIXTURE_DATA.resolve("alpaca-format-dolly-sample20.jsonl"), dir.resolve("a.data"));
    Files.writeString(dir.resolve("_SUCCESS"), "");
    Files.writeString(dir.resolve(".hidden.jsonl"), "not json\n");
    Path out = tmp.resolve("out");
    Manifest m =
        run(
            PreprocessConfig.builder(dir.toString(), TestData.STORIES.toString(), out.toString())
                .fileFormat(FileFormat.JSONL)
                .build());
    assertCounts(out, m);
    assertThat(m.inputRows()).as("hidden and _ files are skipped").isEqualTo(20);
    assertThat(allRows(out).get(0).getString(allRows(out).get(0).fieldIndex(ShardSchema.SOURCE)))
        .startsWith("a.data:");

    Files.writeString(dir.resolve("b.bin"), "hello world\n");
    assertThatThrownBy(
            () ->
                run(
                    PreprocessConfig.builder(
                            dir.toString(), TestData.STORIES.toString(), out.toString())
                        .build()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("b.bin")
        .hasMessageContaining("--input-format");
  }
}
