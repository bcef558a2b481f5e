package io.loraspark.train.data;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.loraspark.train.model.TokenRow;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Tokenized rows as JSONL, one object per line: {@code input_ids}, optional {@code labels} (-100
 * where not scored; default: every token) and optional {@code segment_ids} (packed rows). Parsed
 * strictly (no trailing commas, unquoted keys or duplicate keys); every error names the file and
 * line.
 */
public final class TokenRowsJsonl {
  /** The strict JSON reader used for every row. */
  public static final ObjectMapper STRICT =
      JsonMapper.builder()
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
          .build();

  private TokenRowsJsonl() {}

  /**
   * Reads every non-blank line of {@code file} as a token row, without checking it against a model.
   *
   * @throws IllegalArgumentException naming the file and line of the first bad row, or when the
   *     file has no rows
   */
  public static List<TokenRow> read(Path file) {
    return read(file, TokenRowsJsonl::parseRow, "input_ids");
  }

  /**
   * Reads every non-blank line of {@code file} as a token row that {@code limits} allows.
   *
   * @throws IllegalArgumentException naming the file and line of the first bad row (including ids,
   *     labels or examples outside {@code limits}), or when the file has no rows
   */
  public static List<TokenRow> read(Path file, TokenLimits limits) {
    return read(
        file,
        node -> {
          TokenRow row = parseRow(node);
          limits.check(row);
          return row;
        },
        "input_ids");
  }

  private static TokenRow parseRow(JsonNode row) {
    if (!row.isObject() || !row.has("input_ids")) {
      throw new IllegalArgumentException(
          "needs an object with an input_ids array (tokenize text with preprocess)");
    }
    return parseIds(row);
  }

  /**
   * Reads every non-blank line of {@code file} with {@code parse}.
   *
   * @param parse turns one parsed line into a row; its IllegalArgumentException is reported with
   *     the file and line
   * @param expected what a row holds, for the message when the file has none
   * @throws IllegalArgumentException naming the file and line of the first bad row, or when the
   *     file has no rows
   */
  public static List<TokenRow> read(
      Path file, java.util.function.Function<JsonNode, TokenRow> parse, String expected) {
    List<TokenRow> rows = new ArrayList<>();
    CharsetDecoder utf8 =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    try (InputStream in = new BufferedInputStream(Files.newInputStream(file))) {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      int lineNo = 0;
      for (int b = in.read(); b >= 0 || bytes.size() > 0; b = in.read()) {
        if (b >= 0 && b != '\n') {
          bytes.write(b);
          continue;
        }
        lineNo++;
        String line = decodeLine(utf8, bytes, file, lineNo);
        bytes.reset();
        if (!line.isBlank()) {
          rows.add(parseLine(parse, line, file, lineNo));
        }
        if (b < 0) {
          break;
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file, e);
    }
    if (rows.isEmpty()) {
      throw new IllegalArgumentException(file + ": no rows (expected JSONL with " + expected + ")");
    }
    return rows;
  }

  /** One line's bytes as strict UTF-8, without a trailing carriage return. */
  private static String decodeLine(
      CharsetDecoder utf8, ByteArrayOutputStream bytes, Path file, int lineNo) {
    byte[] b = bytes.toByteArray();
    int n = b.length > 0 && b[b.length - 1] == '\r' ? b.length - 1 : b.length;
    try {
      return utf8.decode(ByteBuffer.wrap(b, 0, n)).toString();
    } catch (CharacterCodingException e) {
      throw new IllegalArgumentException(
          file + " line " + lineNo + ": not valid UTF-8 text; token JSONL must be UTF-8", e);
    }
  }

  private static TokenRow parseLine(
      java.util.function.Function<JsonNode, TokenRow> parse, String line, Path file, int lineNo) {
    try {
      return parse.apply(STRICT.readTree(line));
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(
          file + " line " + lineNo + ": not valid JSON (" + e.getOriginalMessage() + ")");
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + " line " + lineNo + ": " + e.getMessage());
    }
  }

  /** One object with {@code input_ids} and optional {@code labels} and {@code segment_ids}. */
  public static TokenRow parseIds(JsonNode row) {
    int[] ids = intArray(row.get("input_ids"), "input_ids");
    int[] labels = row.has("labels") ? intArray(row.get("labels"), "labels") : ids.clone();
    int[] segments =
        row.has("segment_ids") ? intArray(row.get("segment_ids"), "segment_ids") : null;
    return new TokenRow(ids, labels, segments);
  }

  /**
   * A stable ~10% of rows for evaluation when the data has no split of its own, chosen by a hash of
   * the token ids (independent of file order and partitioning).
   */
  public static boolean isEvalRow(TokenRow r) {
    long h = Arrays.hashCode(r.inputIds()) * 0x9E3779B97F4A7C15L;
    return Long.remainderUnsigned(h >>> 7, 10) == 0;
  }

  private static int[] intArray(JsonNode node, String key) {
    if (node == null || !node.isArray() || node.isEmpty()) {
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
