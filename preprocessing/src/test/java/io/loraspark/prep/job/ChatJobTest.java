package io.loraspark.prep.job;

import static io.loraspark.prep.ShardAssertions.allRows;
import static io.loraspark.prep.ShardAssertions.assertCounts;
import static io.loraspark.prep.ShardAssertions.assertRowShape;
import static io.loraspark.prep.ShardAssertions.ints;
import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.prep.ChatModels;
import io.loraspark.prep.ShardAssertions;
import io.loraspark.prep.TestData;
import io.loraspark.prep.shard.Manifest;
import io.loraspark.prep.shard.RejectedSchema;
import io.loraspark.prep.shard.ShardSchema;
import io.loraspark.prep.tokenize.TextTokenizer;
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

/** Multi-turn messages and ShareGPT input through the job with a ChatML chat template. */
class ChatJobTest {
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

  static final String GUARDED_TEMPLATE =
      "{% for m in messages %}{% if 'forbidden' in m['content'] %}"
          + "{{ raise_exception('forbidden content in a ' + m['role'] + ' message') }}{% endif %}"
          + "{% endfor %}"
          + ChatModels.QWEN2_TEMPLATE;

  @Test
  void scoresEveryAssistantTurnOfMessagesInput() throws Exception {
    Path model = ChatModels.chatml(tmp.resolve("model"), GUARDED_TEMPLATE);
    Path input = tmp.resolve("chat.jsonl");
    Files.write(
        input,
        List.of(
            "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
                + " {\"role\": \"user\", \"content\": \"Hi!\"}, {\"role\": \"assistant\", \"content\": \"Hello.\"},"
                + " {\"role\": \"user\", \"content\": \"Bye!\"}, {\"role\": \"assistant\", \"content\": \"Goodbye, friend.\"}]}",
            "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Two \"},"
                + " {\"type\": \"text\", \"text\": \"parts\"}]}, {\"role\": \"assistant\", \"content\": \"Joined.\"}]}",
            "{\"messages\": [{\"role\": \"system\", \"content\": \"Only a system turn.\"}]}",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Weather?\"}, {\"role\": \"tool\", \"content\": \"sunny\"}]}",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Say something forbidden.\"}, {\"role\": \"assistant\", \"content\": \"No.\"}]}",
            "{\"messages\": [{\"role\": \"assistant\", \"content\": \"I speak first.\"}, {\"role\": \"user\", \"content\": \"Ok\"}]}",
            "{\"messages\": []}"));
    Path out = tmp.resolve("out");
    Manifest m =
        new PreprocessJob(
                PreprocessConfig.builder(input.toString(), model.toString(), out.toString())
                    .build(),
                s -> {})
            .run(spark);

    assertCounts(out, m);
    assertThat(m.json().path("template").asText())
        .as("auto picks the chat template")
        .isEqualTo("chat");
    assertThat(m.json().path("record_format").asText()).isEqualTo("messages");
    assertThat(m.json().path("chat_template_hash").asText()).hasSize(64);
    assertThat(m.accepted()).isEqualTo(2);
    Map<Long, String> reasons = new TreeMap<>();
    for (Row r : ShardAssertions.rejected(out)) {
      reasons.put(
          r.getLong(r.fieldIndex(RejectedSchema.ROW_NUMBER)),
          r.getString(r.fieldIndex(RejectedSchema.REASON)));
      if (r.getLong(r.fieldIndex(RejectedSchema.ROW_NUMBER)) == 5) {
        assertThat(r.getString(r.fieldIndex(RejectedSchema.MESSAGE)))
            .contains("forbidden content in a user message");
      }
    }
    assertThat(reasons)
        .containsExactlyEntriesOf(
            new TreeMap<>(
                Map.of(
                    3L, "invalid_conversation",
                    4L, "invalid_conversation",
                    5L, "template_error",
                    6L, "invalid_conversation",
                    7L, "empty_field")));
    try (TextTokenizer tok = TextTokenizer.load(model)) {
      for (Row r : allRows(out)) {
        assertRowShape(r, 512);
        List<int[]> runs =
            ShardAssertions.scoredRuns(ints(r, ShardSchema.INPUT_IDS), ints(r, ShardSchema.LABELS));
        List<String> decoded = runs.stream().map(run -> tok.decode(run, false)).toList();
        String source = r.getString(r.fieldIndex(ShardSchema.SOURCE));
        if (source.equals("chat.jsonl:1")) {
          assertThat(decoded).containsExactly("Hello.<|im_end|>", "Goodbye, friend.<|im_end|>");
        } else {
          assertThat(source).isEqualTo("chat.jsonl:2");
          assertThat(decoded).containsExactly("Joined.<|im_end|>");
          assertThat(tok.decode(ints(r, ShardSchema.INPUT_IDS), false))
              .contains("user\nTwo parts<|im_end|>");
        }
      }
    }
  }

  @Test
  void readsShareGptWithTheAlpacaTemplateToo() throws Exception {
    Path input = tmp.resolve("sharegpt.jsonl");
    Files.write(
        input,
        List.of(
            "{\"conversations\": [{\"from\": \"human\", \"value\": \"What is 2+2?\"}, {\"from\": \"gpt\", \"value\": \"4\"},"
                + " {\"from\": \"human\", \"value\": \"And 3+3?\"}, {\"from\": \"gpt\", \"value\": \"6\"}]}",
            "{\"conversations\": [{\"from\": \"system\", \"value\": \"You answer in words.\"},"
                + " {\"from\": \"human\", \"value\": \"What is 1+1?\"}, {\"from\": \"gpt\", \"value\": \"Two\"}]}",
            "{\"conversations\": [{\"from\": \"narrator\", \"value\": \"x\"}, {\"from\": \"gpt\", \"value\": \"y\"}]}",
            "{\"conversations\": [{\"from\": \"human\", \"value\": 5}, {\"from\": \"gpt\", \"value\": \"y\"}]}"));
    Path out = tmp.resolve("out");
    Manifest m =
        new PreprocessJob(
                PreprocessConfig.builder(
                        input.toString(), TestData.STORIES.toString(), out.toString())
                    .build(),
                s -> {})
            .run(spark);
    assertCounts(out, m);
    assertThat(m.json().path("record_format").asText()).isEqualTo("sharegpt");
    assertThat(m.json().path("template").asText()).isEqualTo("alpaca");
    assertThat(m.rejectedByReason())
        .containsOnly(Map.entry("invalid_conversation", 1L), Map.entry("wrong_type", 1L));
    Map<String, List<String>> replies =
        Map.of("sharegpt.jsonl:1", List.of("4", "6"), "sharegpt.jsonl:2", List.of("Two"));
    try (TextTokenizer tok = TextTokenizer.load(TestData.STORIES)) {
      for (Row r : allRows(out)) {
        String source = r.getString(r.fieldIndex(ShardSchema.SOURCE));
        ShardAssertions.assertMaskMatchesReplies(r, replies.get(source), tok, 512);
        if (source.equals("sharegpt.jsonl:2")) {
          assertThat(tok.decode(ints(r, ShardSchema.INPUT_IDS), true))
              .as("a system turn replaces the Alpaca preamble")
              .startsWith("You answer in words.\n\n### Instruction:\nWhat is 1+1?");
        }
      }
    }
  }
}
