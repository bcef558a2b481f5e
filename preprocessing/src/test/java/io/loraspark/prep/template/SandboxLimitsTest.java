package io.loraspark.prep.template;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.prep.schema.RejectReason;
import io.loraspark.prep.schema.RowRejection;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Hostile chat templates found by fuzzing (ChatTemplateFuzzTest) and by hand: each is refused with
 * a one-line reason, quickly, instead of hanging or killing the task with a stack overflow.
 */
class SandboxLimitsTest {

  static final String BODY = "{% for m in messages %}{{ m.content }}{% endfor %}";

  @Test
  void deeplyNestedExpressionIsRefusedBeforeParsing() {
    String deep = "{{ " + "(".repeat(20_000) + "1" + ")".repeat(20_000) + " }}" + BODY;
    long start = System.nanoTime();
    assertThatThrownBy(() -> new ChatTemplate(deep, "", "").validate("m"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("brackets inside a tag nest 20000 deep; at most 64 are allowed");
    assertThat(Duration.ofNanos(System.nanoTime() - start))
        .as("jinjava alone took 35 s for 3,200 levels")
        .isLessThan(Duration.ofSeconds(2));
  }

  @Test
  void nestingIsCountedInsideTagsOnlyAndNotInStrings() {
    assertThat(TagNesting.maxDepth("((((( {{ f(a[1], {'k': (2)}) }} ((((")).isEqualTo(3);
    assertThat(TagNesting.maxDepth("{% set s = '((((((' %}{{ \"[[[\" ~ s }}")).isZero();
    assertThat(TagNesting.maxDepth("{%- if (a) -%}x{%- endif -%}{# ((( #}")).isEqualTo(1);
  }

  @Test
  void stackOverflowInTheParserIsARenderFailure() {
    for (String t :
        new String[] {
          "{{ 1" + "|upper".repeat(50_000) + " }}" + BODY,
          "{{ " + "-".repeat(100_000) + "1 }}" + BODY,
          "{% if true %}".repeat(5_000) + BODY + "{% endif %}".repeat(5_000)
        }) {
      assertThatThrownBy(
              () -> new SandboxedJinja().render(t, Map.of("messages", java.util.List.of())))
          .as(t.substring(0, 20))
          .isInstanceOf(SandboxedJinja.RenderFailure.class)
          .hasMessage(
              "the template nests too deeply (stack overflow while parsing or rendering it)");
    }
  }

  @Test
  void failureMessagesStayOnOneLine() {
    String include = "{% include '/etc/pas\nswd\n' %}" + BODY;
    assertThatThrownBy(
            () ->
                new ChatTemplate(include, "", "")
                    .render(io.loraspark.prep.schema.Conversation.single("q", "", "a")))
        .isInstanceOf(RowRejection.class)
        .satisfies(
            e -> assertThat(((RowRejection) e).reason()).isEqualTo(RejectReason.TEMPLATE_ERROR))
        .hasMessage(
            "chat_template: the template tried to load \"/etc/pas swd\"; chat templates may not"
                + " include, import or extend other files");
  }
}
