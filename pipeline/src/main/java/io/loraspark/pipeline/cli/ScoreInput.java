package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.loraspark.prep.tokenize.TextTokenizer;
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
  static final ObjectMapper STRICT =
      JsonMapper.builder()
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
          .build();

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
      int[] ids = intArray(row.get("input_ids"), "input_ids");
      int[] labels = row.has("labels") ? intArray(row.get("labels"), "labels") : ids.clone();
      return new TokenRow(ids, labels);
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

  private static int[] intArray(JsonNode node, String key) {
    if (!node.isArray() || node.isEmpty()) {
      throw new IllegalArgumentException(key + " must be a non-empty array of integers");
    }
    int[] out = new int[node.size()];
    for (int i = 0; i < out.length; i++) {
      JsonNode v = node.get(i);
      if (!v.isIntegralNumber() || !v.canConvertToInt()) {
        throw new IllegalArgumentException(key + "[" + i + "] must be an integer but was " + v);
      }
      out[i] = v.intValue();
    }
    return out;
  }
}
