package io.loraspark.prep.read;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.loraspark.prep.schema.RejectReason;
import io.loraspark.prep.schema.RowRejection;

/**
 * Strict JSON as RFC 8259 defines it: no trailing commas, unquoted or single-quoted keys, comments,
 * NaN, leading zeros or control characters in strings; duplicate keys and content after the value
 * are errors too. Jackson's defaults already refuse the lenient extensions; this class also turns
 * on duplicate detection and trailing-token checks and keeps the settings in one place.
 */
public final class StrictJson {

  /** The shared, thread-safe strict mapper. */
  public static final ObjectMapper MAPPER =
      JsonMapper.builder()
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
          .build();

  private StrictJson() {}

  /**
   * Parses one JSON value.
   *
   * @throws RowRejection ({@link RejectReason#MALFORMED_JSON}) with Jackson's message and the
   *     column of the error
   */
  public static JsonNode parse(String text) {
    try {
      JsonNode node = MAPPER.readTree(text);
      if (node == null || node.isMissingNode()) {
        throw new RowRejection(RejectReason.MALFORMED_JSON, "no JSON value");
      }
      return node;
    } catch (JsonProcessingException e) {
      throw new RowRejection(RejectReason.MALFORMED_JSON, describe(e, false));
    }
  }

  /** One-line description of a parse error: Jackson's message plus where it happened. */
  static String describe(JsonProcessingException e, boolean withLine) {
    JsonLocation at = e.getLocation();
    String where = "";
    if (at != null) {
      where =
          withLine
              ? " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")"
              : " (column " + at.getColumnNr() + ")";
    }
    return "invalid JSON" + where + ": " + oneLine(e.getOriginalMessage());
  }

  /** {@code message} on one line: line breaks and the blanks around them become one space. */
  static String oneLine(String message) {
    return String.valueOf(message).replaceAll("\\s*\\R\\s*", " ");
  }
}
