package io.loraspark.prep.tokenize;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.stream.StreamSupport;

/** Paths to the shared fixtures (relative to the preprocessing module) and JSON helpers. */
final class Fixtures {

  static final Path STORIES_DIR = Path.of("../models/stories260K");
  static final Path REFERENCE_DIR = Path.of("../fixtures/reference");
  static final Path GPT2_DIR = Path.of("../fixtures/tokenizers/gpt2");
  static final ObjectMapper MAPPER = new ObjectMapper();

  private Fixtures() {}

  static JsonNode reference(String name) {
    try {
      return MAPPER.readTree(REFERENCE_DIR.resolve(name).toFile());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static int[] ints(JsonNode array) {
    return StreamSupport.stream(array.spliterator(), false).mapToInt(JsonNode::intValue).toArray();
  }
}
