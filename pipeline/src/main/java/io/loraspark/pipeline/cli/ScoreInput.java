package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.data.TokenLimits;
import io.loraspark.train.data.TokenRowsJsonl;
import io.loraspark.train.model.TokenRow;
import java.nio.file.Path;
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
   * @param limits the model's vocabulary and positions, which every row must fit
   */
  static List<TokenRow> read(Path file, Supplier<TextTokenizer> tokenizer, TokenLimits limits) {
    return TokenRowsJsonl.read(
        file,
        row -> {
          TokenRow r = parse(row, tokenizer);
          limits.check(r);
          return r;
        },
        "input_ids or text");
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
