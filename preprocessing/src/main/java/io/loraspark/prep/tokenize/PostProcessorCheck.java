package io.loraspark.prep.tokenize;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;

/**
 * Checks a {@code tokenizer.json} post-processor before DJL's native tokenizers sees it: a {@code
 * TemplateProcessing} template that names a special token missing from its {@code special_tokens}
 * makes the Rust library panic while encoding, which aborts the whole JVM (found by fuzzing), so
 * such a file must be refused in Java. tokenizers matches processors by shape (a misspelt {@code
 * type} still loads as a template), so every object with {@code single}/{@code pair} is checked.
 */
final class PostProcessorCheck {

  private PostProcessorCheck() {}

  /**
   * @param processor the {@code post_processor} node (missing or null: nothing to check)
   * @param file named in the message
   * @throws IllegalArgumentException if a template names a special token that {@code
   *     special_tokens} does not define, or a special token's {@code ids} and {@code tokens} differ
   *     in length
   */
  static void check(JsonNode processor, Path file) {
    for (JsonNode p : processor.path("processors")) {
      check(p, file);
    }
    // tokenizers reads any object with these fields as a template, whatever its "type" says
    JsonNode special = processor.path("special_tokens");
    for (String template : new String[] {"single", "pair"}) {
      for (JsonNode piece : processor.path(template)) {
        JsonNode id = piece.path("SpecialToken").path("id");
        if (!id.isMissingNode() && !special.has(id.asText())) {
          throw new IllegalArgumentException(
              String.format(
                  "%s: post_processor.%s uses special token %s, which post_processor.special_tokens"
                      + " does not define",
                  file, template, id));
        }
      }
    }
    for (JsonNode token : special) {
      if (token.path("ids").size() != token.path("tokens").size()) {
        throw new IllegalArgumentException(
            String.format(
                "%s: post_processor.special_tokens entry %s has %d ids but %d tokens",
                file, token.path("id"), token.path("ids").size(), token.path("tokens").size()));
      }
    }
  }
}
