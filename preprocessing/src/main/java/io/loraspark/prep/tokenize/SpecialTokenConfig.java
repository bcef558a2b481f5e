package io.loraspark.prep.tokenize;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.MissingNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * The special-token settings of a model directory, as written in {@code tokenizer_config.json} and
 * {@code generation_config.json} (each optional). Absent or {@code null} keys are empty.
 *
 * @param tokenizerClass {@code tokenizer_class}, e.g. {@code LlamaTokenizer}
 * @param addBosToken {@code add_bos_token}
 * @param addEosToken {@code add_eos_token}
 * @param bosToken {@code bos_token} (a string or an AddedToken object's {@code content})
 * @param eosToken {@code eos_token}
 * @param padToken {@code pad_token}
 * @param chatTemplate {@code chat_template} (a string, or the {@code default} entry of a named
 *     list), else the content of {@code chat_template.jinja}
 * @param modelMaxLength {@code model_max_length}; empty when absent or larger than an int (the
 *     Hugging Face "unlimited" sentinel)
 * @param genBosId {@code generation_config.json} {@code bos_token_id}
 * @param genEosIds {@code generation_config.json} {@code eos_token_id} (an int or a list)
 * @param genPadId {@code generation_config.json} {@code pad_token_id}
 */
record SpecialTokenConfig(
    Optional<String> tokenizerClass,
    Optional<Boolean> addBosToken,
    Optional<Boolean> addEosToken,
    Optional<String> bosToken,
    Optional<String> eosToken,
    Optional<String> padToken,
    Optional<String> chatTemplate,
    OptionalInt modelMaxLength,
    OptionalInt genBosId,
    List<Integer> genEosIds,
    OptionalInt genPadId) {

  static final String TOKENIZER_CONFIG = "tokenizer_config.json";
  static final String GENERATION_CONFIG = "generation_config.json";
  static final String CHAT_TEMPLATE_FILE = "chat_template.jinja";

  SpecialTokenConfig {
    genEosIds = List.copyOf(genEosIds);
  }

  /** A configuration that names no special tokens and no template. */
  static SpecialTokenConfig none() {
    return fromJson(MissingNode.getInstance(), Path.of(TOKENIZER_CONFIG), Optional.empty())
        .withGeneration(MissingNode.getInstance(), Path.of(GENERATION_CONFIG));
  }

  /**
   * Reads the optional {@code tokenizer_config.json}, {@code generation_config.json} and {@code
   * chat_template.jinja} of {@code dir}.
   *
   * @throws IllegalArgumentException naming the file if one exists but is malformed
   */
  static SpecialTokenConfig read(Path dir) {
    Path tokenizerConfig = dir.resolve(TOKENIZER_CONFIG);
    Path generationConfig = dir.resolve(GENERATION_CONFIG);
    Path templateFile = dir.resolve(CHAT_TEMPLATE_FILE);
    JsonNode tc = optionalObject(tokenizerConfig, "the tokenizer settings JSON object");
    JsonNode gc = optionalObject(generationConfig, "the generation settings JSON object");
    Optional<String> fileTemplate = Optional.empty();
    if (Files.isRegularFile(templateFile)) {
      try {
        fileTemplate = Optional.of(Files.readString(templateFile, StandardCharsets.UTF_8));
      } catch (IOException e) {
        throw new IllegalArgumentException(
            templateFile + " cannot be read as UTF-8 text (" + e + ")", e);
      }
    }
    return fromJson(tc, tokenizerConfig, fileTemplate).withGeneration(gc, generationConfig);
  }

  private static JsonNode optionalObject(Path file, String expected) {
    return Files.exists(file) ? JsonFiles.readObject(file, expected) : MissingNode.getInstance();
  }

  private static SpecialTokenConfig fromJson(
      JsonNode tc, Path file, Optional<String> fileTemplate) {
    Optional<String> template = chatTemplate(tc.path("chat_template"), file);
    return new SpecialTokenConfig(
        token(tc, "tokenizer_class", file),
        bool(tc, "add_bos_token", file),
        bool(tc, "add_eos_token", file),
        token(tc, "bos_token", file),
        token(tc, "eos_token", file),
        token(tc, "pad_token", file),
        template.or(() -> fileTemplate),
        maxLength(tc.path("model_max_length"), file),
        OptionalInt.empty(),
        List.of(),
        OptionalInt.empty());
  }

  private SpecialTokenConfig withGeneration(JsonNode gc, Path file) {
    List<Integer> eos = new ArrayList<>();
    JsonNode eosNode = gc.path("eos_token_id");
    if (eosNode.isArray()) {
      for (int i = 0; i < eosNode.size(); i++) {
        OptionalInt one = id(eosNode.get(i), file, "eos_token_id[" + i + "]");
        if (one.isEmpty()) {
          throw new IllegalArgumentException(
              file + ": eos_token_id[" + i + "] must be a non-negative integer token id, not null");
        }
        eos.add(one.getAsInt());
      }
    } else {
      id(eosNode, file, "eos_token_id").ifPresent(eos::add);
    }
    return new SpecialTokenConfig(
        tokenizerClass,
        addBosToken,
        addEosToken,
        bosToken,
        eosToken,
        padToken,
        chatTemplate,
        modelMaxLength,
        id(gc.path("bos_token_id"), file, "bos_token_id"),
        eos,
        id(gc.path("pad_token_id"), file, "pad_token_id"));
  }

  private static boolean absent(JsonNode node) {
    return node.isMissingNode() || node.isNull();
  }

  private static Optional<Boolean> bool(JsonNode tc, String key, Path file) {
    JsonNode node = tc.path(key);
    if (absent(node)) {
      return Optional.empty();
    }
    if (!node.isBoolean()) {
      throw new IllegalArgumentException(
          file + ": " + key + " must be true, false or null but is " + node);
    }
    return Optional.of(node.booleanValue());
  }

  private static Optional<String> token(JsonNode tc, String key, Path file) {
    JsonNode node = tc.path(key);
    if (absent(node)) {
      return Optional.empty();
    }
    if (node.isTextual()) {
      return Optional.of(node.textValue());
    }
    if (node.isObject() && node.path("content").isTextual()) {
      return Optional.of(node.path("content").textValue());
    }
    throw new IllegalArgumentException(
        file
            + ": "
            + key
            + " must be a string, null or an AddedToken object with a string \"content\" but is "
            + node);
  }

  private static Optional<String> chatTemplate(JsonNode node, Path file) {
    if (absent(node)) {
      return Optional.empty();
    }
    if (node.isTextual()) {
      return Optional.of(node.textValue());
    }
    if (node.isArray() && !node.isEmpty()) {
      JsonNode chosen = node.get(0);
      for (JsonNode entry : node) {
        if ("default".equals(entry.path("name").asText(null))) {
          chosen = entry;
        }
      }
      if (chosen.path("template").isTextual()) {
        return Optional.of(chosen.path("template").textValue());
      }
    }
    throw new IllegalArgumentException(
        file
            + ": chat_template must be a string or a non-empty list of"
            + " {\"name\": ..., \"template\": \"...\"} objects but is "
            + JsonFiles.oneLine(node.toString()));
  }

  private static OptionalInt maxLength(JsonNode node, Path file) {
    if (absent(node)) {
      return OptionalInt.empty();
    }
    if (!node.isNumber() || node.doubleValue() < 1) {
      throw new IllegalArgumentException(
          file + ": model_max_length must be a positive number but is " + node);
    }
    return node.doubleValue() > Integer.MAX_VALUE
        ? OptionalInt.empty()
        : OptionalInt.of((int) node.doubleValue());
  }

  private static OptionalInt id(JsonNode node, Path file, String key) {
    if (absent(node)) {
      return OptionalInt.empty();
    }
    if (!node.isIntegralNumber() || !node.canConvertToInt() || node.intValue() < 0) {
      throw new IllegalArgumentException(
          file + ": " + key + " must be a non-negative integer token id but is " + node);
    }
    return OptionalInt.of(node.intValue());
  }
}
