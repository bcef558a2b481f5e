package io.loraspark.train.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.model.TokenRow;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Token JSONL is strict UTF-8 JSON per line; a bad line is an input error naming file and line. */
class TokenRowsJsonlTest {

  @TempDir Path tmp;

  @Test
  void readsCrlfBlankLinesAndAFinalLineWithoutNewline() throws IOException {
    Path file =
        Files.writeString(
            tmp.resolve("rows.jsonl"), "{\"input_ids\": [1, 2]}\r\n\r\n  \n{\"input_ids\": [3]}");
    List<TokenRow> rows = TokenRowsJsonl.read(file);
    assertThat(rows).extracting(TokenRow::length).containsExactly(2, 1);
  }

  @Test
  void invalidUtf8IsAnInputErrorNamingTheLine() throws IOException {
    byte[] good = "{\"input_ids\": [1]}\n".getBytes(StandardCharsets.UTF_8);
    byte[] bad = {'{', '"', 'x', (byte) 0xC3, '"', ':', '1', '}', '\n'};
    Path file = tmp.resolve("bad.jsonl");
    Files.write(file, good);
    Files.write(file, bad, java.nio.file.StandardOpenOption.APPEND);
    assertThatThrownBy(() -> TokenRowsJsonl.read(file))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(file + " line 2: not valid UTF-8 text; token JSONL must be UTF-8");
  }

  @Test
  void invalidJsonNamesTheLine() throws IOException {
    Path file = Files.writeString(tmp.resolve("rows.jsonl"), "\n{\"input_ids\": [1,]}\n");
    assertThatThrownBy(() -> TokenRowsJsonl.read(file))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith(file + " line 2: not valid JSON (");
  }
}
