package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.data.TokenRowsJsonl;
import io.loraspark.train.model.TokenRow;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * Reads the JSONL that {@code score} takes: one object per line with either {@code input_ids} (and
 * optionally {@code labels}, -100 where not scored) or {@code text} (tokenized with the model's
 * tokenizer, special tokens as its config says). Parsed strictly; every error names the file and
 * line.
 */
final class ScoreInput {
  static final ObjectMapper STRICT = TokenRowsJsonl.STRICT;

  private ScoreInput() {}

  /**
   * @param tokenizer opened on the first {@code text} row only
   */
  static List<TokenRow> read(Path file, Supplier<TextTokenizer> tokenizer) {
    List<TokenRow> rows = new ArrayList<>();
    try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      String line;
      int lineNo = 0;
      while ((line = in.readLine()) != null) {
        lineNo++;
        if (line.isBlank()) {
          continue;
        }
        try {
          rows.add(parse(STRICT.readTree(line), tokenizer));
        } catch (JsonProcessingException e) {
          throw new IllegalArgumentException(
              file + " line " + lineNo + ": not valid JSON (" + e.getOriginalMessage() + ")");
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException(file + " line " + lineNo + ": " + e.getMessage());
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file, e);
    }
    if (rows.isEmpty()) {
      throw new IllegalArgumentException(
          file + ": no rows (expected JSONL with input_ids or text)");
    }
    return rows;
  }

  private static TokenRow parse(JsonNode row, Supplier<TextTokenizer> tokenizer) {
    if (!row.isObject()) {
      throw new IllegalArgumentException("each line must be a JSON object");
    }
    if (row.has("input_ids")) {
      return TokenRowsJsonl.parseIds(row);
    }
    if (row.has("text")) {
      JsonNode text = row.get("text");
      if (!text.isTextual() || text.asText().isEmpty()) {
        throw new IllegalArgumentException("text must be a non-empty string");
      }
      return TokenRow.unmasked(tokenizer.get().encode(text.asText(), true));
    }
    throw new IllegalArgumentException("needs an input_ids array or a text string");
  }
}
