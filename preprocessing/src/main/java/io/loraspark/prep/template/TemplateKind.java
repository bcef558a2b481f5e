package io.loraspark.prep.template;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** Which prompt template to use; {@link #AUTO} picks the model's chat template if it has one. */
public enum TemplateKind {
  /** {@link #CHAT} when the tokenizer config has a chat_template, else {@link #ALPACA}. */
  AUTO,
  /** The Stanford Alpaca prompt. */
  ALPACA,
  /** The model's chat_template (Jinja), rendered in a sandbox. */
  CHAT;

  /** Lower-case name. */
  public String cliName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /**
   * Resolves {@link #AUTO}.
   *
   * @param hasChatTemplate whether the model has a chat template
   * @throws IllegalArgumentException if {@link #CHAT} is asked for a model without a chat template
   */
  public TemplateKind resolve(boolean hasChatTemplate, String modelDir) {
    if (this == AUTO) {
      return hasChatTemplate ? CHAT : ALPACA;
    }
    if (this == CHAT && !hasChatTemplate) {
      throw new IllegalArgumentException(
          modelDir
              + " has no chat_template (tokenizer_config.json or chat_template.jinja); use"
              + " --template alpaca");
    }
    return this;
  }

  /**
   * Parses a command-line name.
   *
   * @throws IllegalArgumentException listing the valid names
   */
  public static TemplateKind parse(String name) {
    return Arrays.stream(values())
        .filter(k -> k.name().equalsIgnoreCase(name.strip()))
        .findFirst()
        .orElseThrow(
            () ->
                new IllegalArgumentException(
                    "--template \""
                        + name
                        + "\" is unknown; valid templates are "
                        + Arrays.stream(values())
                            .map(TemplateKind::cliName)
                            .collect(Collectors.joining("|"))));
  }
}
