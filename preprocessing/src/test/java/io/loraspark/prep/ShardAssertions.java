package io.loraspark.prep;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.prep.schema.Conversation;
import io.loraspark.prep.schema.RecordFormat;
import io.loraspark.prep.schema.Role;
import io.loraspark.prep.schema.Turn;
import io.loraspark.prep.shard.Manifest;
import io.loraspark.prep.shard.RejectedSchema;
import io.loraspark.prep.shard.ShardSchema;
import io.loraspark.prep.tokenize.TextTokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;

/** Reads a preprocess output back and checks its invariants against the input data. */
public final class ShardAssertions {

  private ShardAssertions() {}

  /** Rows of each shard file, by file name, in file order (read without Spark). */
  public static Map<String, List<Row>> shardsByFile(Path output) {
    Map<String, List<Row>> out = new LinkedHashMap<>();
    for (Path f : parts(output.resolve("shards"))) {
      out.put(f.getFileName().toString(), ParquetRows.read(f, ShardSchema.SCHEMA));
    }
    return out;
  }

  /** All shard rows. */
  public static List<Row> allRows(Path output) {
    List<Row> all = new ArrayList<>();
    shardsByFile(output).values().forEach(all::addAll);
    return all;
  }

  /** Rejected rows. */
  public static List<Row> rejected(Path output) {
    List<Row> all = new ArrayList<>();
    for (Path f : parts(output.resolve("rejected"))) {
      all.addAll(ParquetRows.read(f, RejectedSchema.SCHEMA));
    }
    return all;
  }

  private static List<Path> parts(Path dir) {
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    try (Stream<Path> files = Files.list(dir)) {
      return files
          .filter(p -> p.getFileName().toString().matches("part-\\d{5}\\.parquet"))
          .sorted()
          .toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The counts identity and the agreement of the manifest with the files. */
  public static void assertCounts(Path output, Manifest m) {
    assertThat(m.inputRows())
        .as("input_rows = accepted + rejected + duplicates")
        .isEqualTo(m.accepted() + m.rejected() + m.duplicates());
    List<Row> rows = allRows(output);
    long examples =
        rows.stream().mapToLong(r -> r.getInt(r.fieldIndex(ShardSchema.NUM_EXAMPLES))).sum();
    assertThat(examples).as("examples in the shards").isEqualTo(m.accepted());
    assertThat(rejected(output)).as("rows in rejected/").hasSize((int) m.rejected());
    assertThat(m.rejectedByReason().values().stream().mapToLong(Long::longValue).sum())
        .as("rejected_by_reason sums to rejected")
        .isEqualTo(m.rejected());
    assertThat(m.examples(ShardSchema.TRAIN) + m.examples(ShardSchema.EVAL))
        .as("split counts")
        .isEqualTo(m.accepted());
  }

  /** Checks per-row invariants of an unpacked shard row. */
  public static void assertRowShape(Row r, int maxSeqLen) {
    int[] ids = ints(r, ShardSchema.INPUT_IDS);
    int[] labels = ints(r, ShardSchema.LABELS);
    int[] segments = ints(r, ShardSchema.SEGMENT_IDS);
    String id = r.getString(r.fieldIndex(ShardSchema.EXAMPLE_ID));
    assertThat(labels).as("labels length of %s", id).hasSameSizeAs(ids);
    assertThat(segments).as("segment_ids length of %s", id).hasSameSizeAs(ids);
    assertThat(ids.length)
        .as("num_tokens of %s", id)
        .isEqualTo(r.getInt(r.fieldIndex(ShardSchema.NUM_TOKENS)));
    assertThat(ids.length).as("tokens of %s", id).isLessThanOrEqualTo(maxSeqLen);
    long scored =
        java.util.Arrays.stream(labels).filter(l -> l != ShardSchema.IGNORE_INDEX).count();
    assertThat(scored)
        .as("num_label_tokens of %s", id)
        .isEqualTo(r.getInt(r.fieldIndex(ShardSchema.NUM_LABEL_TOKENS)));
    assertThat(scored).as("scored tokens of %s", id).isPositive();
    for (int i = 0; i < ids.length; i++) {
      assertThat(labels[i])
          .as("label %d of %s is -100 or the input id", i, id)
          .isIn(ShardSchema.IGNORE_INDEX, ids[i]);
    }
    assertThat(r.getString(r.fieldIndex(ShardSchema.SPLIT)))
        .isIn(ShardSchema.TRAIN, ShardSchema.EVAL);
    assertThat(id).as("example_id is sha-256 hex").matches("[0-9a-f]{64}");
  }

  /** An int array column. */
  public static int[] ints(Row r, String column) {
    List<Integer> list = r.getList(r.fieldIndex(column));
    return list.stream().mapToInt(Integer::intValue).toArray();
  }

  /**
   * The assistant turns of each input row, by {@code file:row}, mapped with the format the job
   * detects (JSON arrays: element number; JSONL: line number).
   */
  public static Map<String, List<String>> responses(Path file) {
    ObjectMapper mapper = new ObjectMapper();
    Map<Long, JsonNode> records = new HashMap<>();
    try {
      if (file.toString().endsWith(".json")) {
        JsonNode array = mapper.readTree(file.toFile());
        for (int i = 0; i < array.size(); i++) {
          records.put(i + 1L, array.get(i));
        }
      } else {
        List<String> lines = Files.readAllLines(file);
        for (int i = 0; i < lines.size(); i++) {
          if (!lines.get(i).isBlank()) {
            records.put(i + 1L, mapper.readTree(lines.get(i)));
          }
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    RecordFormat format = RecordFormat.detect(new ArrayList<>(records.values()), file.toString());
    Map<String, List<String>> out = new HashMap<>();
    records.forEach(
        (row, node) -> {
          try {
            Conversation c = format.mapper().map(node);
            List<String> replies =
                c.turns().stream()
                    .filter(t -> t.role() == Role.ASSISTANT)
                    .map(Turn::content)
                    .toList();
            out.put(file.getFileName() + ":" + row, replies);
          } catch (RuntimeException e) {
            // rejected rows have no expected response
          }
        });
    return out;
  }

  /**
   * Decodes every run of scored tokens of an unpacked Alpaca row and compares it with the assistant
   * replies: each run is the reply followed by EOS (the last run may be truncated).
   */
  public static void assertMaskMatchesReplies(
      Row r, List<String> replies, TextTokenizer tokenizer, int maxSeqLen) {
    int[] ids = ints(r, ShardSchema.INPUT_IDS);
    int[] labels = ints(r, ShardSchema.LABELS);
    List<int[]> runs = scoredRuns(ids, labels);
    String source = r.getString(r.fieldIndex(ShardSchema.SOURCE));
    boolean truncated = ids.length == maxSeqLen && labels[labels.length - 1] != tokenizer.eosId();
    assertThat(runs.size()).as("scored runs of %s", source).isLessThanOrEqualTo(replies.size());
    if (!truncated) {
      assertThat(runs).as("one scored run per reply of %s", source).hasSize(replies.size());
    }
    for (int k = 0; k < runs.size(); k++) {
      int[] run = runs.get(k);
      String reply = replies.get(k);
      String expected =
          reply.startsWith(" ") ? reply.substring(1) : reply; // the decoder strips one
      boolean last = k == runs.size() - 1;
      if (last && truncated) {
        String decoded = tokenizer.decode(run, false);
        String stem = decoded.isEmpty() ? decoded : decoded.substring(0, decoded.length() - 1);
        assertThat(expected).as("truncated reply %d of %s", k, source).startsWith(stem);
        continue;
      }
      assertThat(run[run.length - 1])
          .as("reply %d of %s ends with EOS", k, source)
          .isEqualTo(tokenizer.eosId());
      String decoded = tokenizer.decode(java.util.Arrays.copyOf(run, run.length - 1), false);
      assertThat(decoded)
          .as("decoded scored tokens of reply %d of %s", k, source)
          .isEqualTo(expected);
    }
  }

  /** Maximal runs of consecutive scored positions. */
  public static List<int[]> scoredRuns(int[] ids, int[] labels) {
    List<int[]> runs = new ArrayList<>();
    int i = 0;
    while (i < ids.length) {
      if (labels[i] == ShardSchema.IGNORE_INDEX) {
        i++;
        continue;
      }
      int j = i;
      while (j < ids.length && labels[j] != ShardSchema.IGNORE_INDEX) {
        j++;
      }
      runs.add(java.util.Arrays.copyOfRange(ids, i, j));
      i = j;
    }
    return runs;
  }
}
