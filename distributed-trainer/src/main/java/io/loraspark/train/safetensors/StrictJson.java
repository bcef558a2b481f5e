package io.loraspark.train.safetensors;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** Strict UTF-8 + JSON parsing shared by the file header and the shard index. */
final class StrictJson {

  /** safetensors' own cap on the header length, in bytes. */
  static final int MAX_HEADER_BYTES = 100_000_000;

  /** Duplicate keys and trailing tokens are errors; strings may be as long as a whole header. */
  static final ObjectMapper MAPPER =
      JsonMapper.builder(
              JsonFactory.builder()
                  .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                  .streamReadConstraints(
                      StreamReadConstraints.builder()
                          .maxStringLength(MAX_HEADER_BYTES)
                          .maxNameLength(MAX_HEADER_BYTES)
                          .build())
                  .build())
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build();

  private StrictJson() {}

  /**
   * Decodes {@code utf8} strictly and parses it as exactly one JSON object (trailing whitespace
   * allowed).
   *
   * @param source the file named in error messages
   * @param what what the bytes are, e.g. "header", for error messages
   * @throws IllegalArgumentException on invalid UTF-8, invalid JSON, duplicate keys, trailing
   *     tokens, or a top-level value that is not an object
   */
  static ObjectNode parseObject(Path source, String what, byte[] utf8) {
    String text;
    try {
      text =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .decode(ByteBuffer.wrap(utf8))
              .toString();
    } catch (CharacterCodingException e) {
      throw new IllegalArgumentException(
          source + ": " + what + " is not valid UTF-8 (" + e + "); expected a UTF-8 JSON object",
          e);
    }
    if (!text.startsWith("{")) {
      throw new IllegalArgumentException(
          source + ": " + what + " must be a JSON object starting with '{' at its first byte");
    }
    JsonNode node;
    try {
      node = MAPPER.readTree(text);
    } catch (JsonProcessingException e) {
      String where =
          e.getLocation() == null
              ? ""
              : " at line "
                  + e.getLocation().getLineNr()
                  + ", column "
                  + e.getLocation().getColumnNr();
      throw new IllegalArgumentException(
          source + ": " + what + " is not valid JSON" + where + ": " + e.getOriginalMessage(), e);
    }
    if (!(node instanceof ObjectNode obj)) {
      throw new IllegalArgumentException(source + ": " + what + " must be a JSON object");
    }
    return obj;
  }

  /** A JSON type name for error messages: "string", "number", "array", ... */
  static String typeOf(JsonNode node) {
    return node.getNodeType().name().toLowerCase(java.util.Locale.ROOT);
  }
}
