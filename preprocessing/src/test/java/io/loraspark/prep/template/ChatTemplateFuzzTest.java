package io.loraspark.prep.template;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.loraspark.prep.schema.Conversation;
import io.loraspark.prep.schema.RejectReason;
import io.loraspark.prep.schema.Role;
import io.loraspark.prep.schema.RowRejection;
import io.loraspark.prep.schema.Turn;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Fuzzes chat templates (untrusted Jinja from a model's {@code tokenizer_config.json}) rendered in
 * the sandbox over a multi-turn conversation. Contract: rendering returns pieces that concatenate
 * to the full text with every assistant reply inside a scored piece, or throws {@link RowRejection}
 * ({@code template_error}) with a one-line reason, within the render budget; no other exception,
 * stack overflow, out-of-memory or hang. Corpus: {@code ChatTemplateFuzzTestInputs/}.
 */
class ChatTemplateFuzzTest {

  static final Conversation MULTI_TURN =
      new Conversation(
          List.of(
              Turn.of(Role.SYSTEM, "You are terse."),
              Turn.of(Role.USER, "Name a color."),
              Turn.of(Role.ASSISTANT, "Blue."),
              Turn.of(Role.USER, "Another one?"),
              Turn.of(Role.ASSISTANT, "Red, like a ripe tomato.")));

  @DictionaryEntries({
    "{%",
    "%}",
    "{{",
    "}}",
    "{% for m in messages %}",
    "{% endfor %}",
    "{% if",
    "{% endif %}",
    "{% macro",
    "{% endmacro %}",
    "{% set",
    "range(",
    "loop.index0",
    "messages",
    "message['content']",
    "add_generation_prompt",
    "raise_exception(",
    "|join",
    "(",
    "[",
    " * ",
    "~"
  })
  @FuzzTest(maxDuration = "30s")
  void render(byte[] bytes) {
    String source = new String(bytes, StandardCharsets.UTF_8);
    List<Piece> pieces;
    try {
      pieces = new ChatTemplate(source, "<s>", "</s>").render(MULTI_TURN);
    } catch (RowRejection e) {
      assertThat(e.reason()).isEqualTo(RejectReason.TEMPLATE_ERROR);
      assertThat(e.getMessage()).as("one line").startsWith("chat_template: ").doesNotContain("\n");
      return;
    }
    String scored =
        pieces.stream()
            .map(Piece.Text.class::cast)
            .filter(Piece.Text::trainable)
            .map(Piece.Text::text)
            .collect(Collectors.joining("\u0000"));
    assertThat(scored).contains("Blue.").contains("Red, like a ripe tomato.");
  }
}
