package io.loraspark.prep.read;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.JsonNode;
import io.loraspark.prep.TestData;
import io.loraspark.prep.schema.Conversation;
import io.loraspark.prep.schema.RecordFormat;
import io.loraspark.prep.schema.RowRejection;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.io.LongWritable;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.mapreduce.lib.input.FileSplit;
import org.apache.hadoop.util.LineReader;
import org.junit.jupiter.api.io.TempDir;
import scala.Tuple2;

/**
 * Fuzzes reading instruction rows: JSON lines, a JSON array and CSV bytes become numbered {@link
 * RawRecord}s, then strict JSON, then a conversation in every record format. Contract: reading
 * never fails on bad bytes (a bad row becomes a rejected record with a reason), and mapping a row
 * either succeeds or throws {@link RowRejection}; format detection throws only {@link
 * IllegalArgumentException}. Anything else is a bug. Corpus: {@code
 * InstructionRowsFuzzTestInputs/}.
 */
class InstructionRowsFuzzTest {

  /** The libFuzzer dictionary the three methods share: a resource beside this class. */
  private static final String DICTIONARY = "InstructionRowsFuzzTest.dict";

  private static final List<RecordFormat> FORMATS =
      List.of(
          RecordFormat.ALPACA,
          RecordFormat.DOLLY,
          RecordFormat.SHAREGPT,
          RecordFormat.MESSAGES,
          RecordFormat.SELF_INSTRUCT);

  @TempDir static Path dir;

  /** The bytes as a JSONL file, split into lines as Hadoop's TextInputFormat does. */
  @DictionaryFile(resourcePath = DICTIONARY)
  @FuzzTest(maxDuration = "30s")
  void jsonLines(byte[] bytes) throws IOException {
    String uri = "file:/fuzz/rows.jsonl";
    InputFile file = new InputFile(0, uri, "rows.jsonl", FileFormat.JSONL, bytes.length);
    List<Tuple2<LongWritable, Text>> lines = new ArrayList<>();
    try (LineReader reader = new LineReader(new ByteArrayInputStream(bytes))) {
      long offset = 0;
      Text line = new Text();
      for (int n; (n = reader.readLine(line)) > 0; offset += n) {
        lines.add(new Tuple2<>(new LongWritable(offset), new Text(line)));
      }
    }
    Iterator<RawRecord> records =
        new JsonLinesReader.NumberLines(Map.of(uri, file), Map.of(JsonLinesReader.key(uri, 0), 0L))
            .call(
                new FileSplit(new org.apache.hadoop.fs.Path(uri), 0, bytes.length, null),
                lines.iterator());
    List<RawRecord> all = new ArrayList<>();
    records.forEachRemaining(all::add);
    mapAll(all, lines.size());
  }

  /** The bytes as a file holding one JSON array of records (or one object). */
  @DictionaryFile(resourcePath = DICTIONARY)
  @FuzzTest(maxDuration = "30s")
  void jsonArray(byte[] bytes) {
    InputFile file = new InputFile(0, "file:/fuzz/rows.json", "rows.json", FileFormat.JSON, 0);
    mapAll(JsonArrayReader.parse(file, bytes), Long.MAX_VALUE);
  }

  /** The bytes as a CSV file with a header row, read by Spark's CSV source. */
  @DictionaryFile(resourcePath = DICTIONARY)
  @FuzzTest(maxDuration = "30s")
  void csv(byte[] bytes) throws IOException {
    Path csv = Files.write(dir.resolve("rows.csv"), bytes);
    InputFile file =
        new InputFile(0, csv.toUri().toString(), "rows.csv", FileFormat.CSV, bytes.length);
    mapAll(TableReader.read(TestData.spark(), List.of(file)).collect(), Long.MAX_VALUE);
  }

  /** Maps every readable record in every format; checks what reading promised. */
  private static void mapAll(List<RawRecord> records, long maxRow) {
    List<JsonNode> sample = new ArrayList<>();
    for (RawRecord r : records) {
      assertThat(r.raw()).as("raw text of %s", r.source()).isNotNull();
      assertThat(r.rowNumber()).as("row number").isBetween(1L, maxRow);
      assertThat(r.error() == null)
          .as("reason and message together")
          .isEqualTo(r.errorMessage() == null);
      if (r.error() != null) {
        continue;
      }
      JsonNode node;
      try {
        node = StrictJson.parse(r.raw());
      } catch (RowRejection e) {
        assertThat(e.getMessage()).isNotBlank();
        continue;
      }
      sample.add(node);
      if (!node.isObject()) {
        continue;
      }
      for (RecordFormat f : FORMATS) {
        try {
          Conversation c = f.mapper().map(node);
          assertThat(c.turns()).as("%s turns of %s", f, r.source()).isNotEmpty();
        } catch (RowRejection e) {
          assertThat(e.getMessage()).as("%s rejection of %s", f, r.source()).isNotBlank();
        }
      }
    }
    try {
      RecordFormat.detect(sample, "rows");
    } catch (IllegalArgumentException e) {
      assertThat(e.getMessage()).contains("cannot detect the record format of rows");
    }
  }
}
