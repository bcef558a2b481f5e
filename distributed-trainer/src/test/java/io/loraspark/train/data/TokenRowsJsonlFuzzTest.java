package io.loraspark.train.data;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.loraspark.train.model.TokenRow;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fuzzes token-row JSONL ({@code score --data}, {@code train --data}). Contract: {@link
 * TokenRowsJsonl#read} returns rows inside the limits, or throws {@link IllegalArgumentException}
 * naming the file; anything else is a bug. Corpus: {@code TokenRowsJsonlFuzzTestInputs/}.
 */
class TokenRowsJsonlFuzzTest {

  /** stories260K's vocabulary and context. */
  private static final TokenLimits LIMITS = new TokenLimits(512, 512);

  @TempDir static Path dir;

  @DictionaryEntries({
    "\"input_ids\"",
    "\"labels\"",
    "\"segment_ids\"",
    "-100",
    "512",
    "2147483648",
    "[]"
  })
  @FuzzTest(maxDuration = "30s")
  void read(byte[] bytes) throws IOException {
    Path file = Files.write(dir.resolve("rows.jsonl"), bytes);
    try {
      List<TokenRow> rows = TokenRowsJsonl.read(file, LIMITS);
      assertThat(rows).isNotEmpty();
      for (TokenRow r : rows) {
        for (int t = 0; t < r.length(); t++) {
          assertThat(r.inputIds()[t]).as("input id").isBetween(0, 511);
          int label = r.labels()[t];
          assertThat(label == -100 || (label >= 0 && label < 512)).as("label %d", label).isTrue();
        }
      }
    } catch (IllegalArgumentException e) {
      assertThat(e.getMessage()).as("names the file").contains(file.toString());
    }
  }
}
