package io.loraspark.prep.template;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.prep.ChatModels;
import io.loraspark.prep.ShardAssertions;
import io.loraspark.prep.schema.Conversation;
import io.loraspark.prep.schema.RejectReason;
import io.loraspark.prep.schema.Role;
import io.loraspark.prep.schema.RowRejection;
import io.loraspark.prep.schema.Turn;
import io.loraspark.prep.shard.ShardSchema;
import io.loraspark.prep.tokenize.EncodedExample;
import io.loraspark.prep.tokenize.ExampleEncoder;
import io.loraspark.prep.tokenize.TextTokenizer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Chat templates: exact masks for every assistant turn, and sandbox limits. */
class ChatTemplateTest {

  @TempDir Path tmp;

  static final Conversation MULTI_TURN =
      new Conversation(
          List.of(
              Turn.of(Role.SYSTEM, "You are terse."),
              Turn.of(Role.USER, "Name a color."),
              Turn.of(Role.ASSISTANT, "Blue."),
              Turn.of(Role.USER, "Another one?"),
              Turn.of(Role.ASSISTANT, "Red, like a ripe tomato.")));

  @Test
  void masksEveryAssistantTurnAndNothingElse() {
    try (TextTokenizer tok =
        TextTokenizer.load(ChatModels.chatml(tmp.resolve("m"), ChatModels.QWEN2_TEMPLATE))) {
      assertThat(tok.eosId()).as("EOS is <|im_end|>").isEqualTo(ChatModels.IM_END);
      ExampleEncoder encoder =
          new ExampleEncoder(tok, ExampleEncoder.template(TemplateKind.CHAT, tok));
      EncodedExample e = encoder.encode(MULTI_TURN);

      String expected =
          "<|im_start|>system\nYou are terse.<|im_end|>\n"
              + "<|im_start|>user\nName a color.<|im_end|>\n"
              + "<|im_start|>assistant\nBlue.<|im_end|>\n"
              + "<|im_start|>user\nAnother one?<|im_end|>\n"
              + "<|im_start|>assistant\nRed, like a ripe tomato.<|im_end|>\n";
      assertThat(tok.decode(e.inputIds(), false)).as("rendered ChatML text").isEqualTo(expected);
      List<int[]> runs = ShardAssertions.scoredRuns(e.inputIds(), e.labels());
      assertThat(runs).as("one scored run per assistant turn").hasSize(2);
      assertThat(tok.decode(runs.get(0), false)).isEqualTo("Blue.<|im_end|>");
      assertThat(tok.decode(runs.get(1), false)).isEqualTo("Red, like a ripe tomato.<|im_end|>");
      assertThat(runs.get(1)[runs.get(1).length - 1]).isEqualTo(ChatModels.IM_END);
      long scored = Arrays.stream(e.labels()).filter(l -> l != ShardSchema.IGNORE_INDEX).count();
      assertThat(scored)
          .as("nothing else is scored")
          .isEqualTo(runs.get(0).length + runs.get(1).length);
      assertThat(e.inputIds()[0])
          .as("no BOS: the template owns special tokens")
          .isEqualTo(ChatModels.IM_START);
    }
  }

  @Test
  void defaultSystemPromptOfTheTemplateIsNotScored() {
    try (TextTokenizer tok =
        TextTokenizer.load(ChatModels.chatml(tmp.resolve("m"), ChatModels.QWEN2_TEMPLATE))) {
      ExampleEncoder encoder =
          new ExampleEncoder(tok, ExampleEncoder.template(TemplateKind.CHAT, tok));
      EncodedExample e = encoder.encode(Conversation.single("Hi", "context here", "Hello there"));
      assertThat(tok.decode(e.inputIds(), false))
          .startsWith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
          .contains("<|im_start|>user\nHi\n\ncontext here<|im_end|>\n");
      List<int[]> runs = ShardAssertions.scoredRuns(e.inputIds(), e.labels());
      assertThat(runs).hasSize(1);
      assertThat(tok.decode(runs.get(0), false)).isEqualTo("Hello there<|im_end|>");
    }
  }

  @Test
  void raiseExceptionRejectsTheRowWithTheTemplatesMessage() {
    String template =
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
            + "{% endif %}"
            + ChatModels.QWEN2_TEMPLATE;
    ChatTemplate chat = new ChatTemplate(template, "", "<|im_end|>");
    chat.validate("test"); // a plain exchange renders
    assertThatThrownBy(() -> chat.render(MULTI_TURN))
        .isInstanceOfSatisfying(
            RowRejection.class, e -> assertThat(e.reason()).isEqualTo(RejectReason.TEMPLATE_ERROR))
        .hasMessageContaining("System role not supported");
  }

  @Test
  void templateThatNeverEndsFailsFastInsteadOfHanging() {
    String loop =
        "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}"
            + "{% endfor %}{% endfor %}{% endfor %}";
    ChatTemplate chat = new ChatTemplate(loop, "", "");
    long start = System.nanoTime();
    assertThatThrownBy(() -> chat.validate("/models/looping"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("/models/looping")
        .hasMessageContaining("longer than");
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(15));
  }

  @Test
  void templateCannotReadFiles() {
    for (String t :
        List.of(
            "{% include '/etc/passwd' %}",
            "{% import 'macros.j2' as m %}{{ m.x() }}", "{% extends 'base.html' %}")) {
      assertThatThrownBy(() -> new ChatTemplate(t, "", "").validate("m"))
          .as("template %s", t)
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("may not include, import or extend");
    }
  }

  @Test
  void recursionAndSyntaxErrorsAreClearErrors() {
    assertThatThrownBy(
            () ->
                new ChatTemplate("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "", "")
                    .validate("m"))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new ChatTemplate("{% for m in messages %}", "", "").validate("m"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("chat_template of m");
  }

  @Test
  void templateWhoseOutputIsNotIncrementalIsRejected() {
    String reversed =
        "{% for message in messages|reverse %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}";
    ChatTemplate chat = new ChatTemplate(reversed, "", "");
    assertThatThrownBy(() -> chat.render(MULTI_TURN))
        .isInstanceOf(RowRejection.class)
        .hasMessageContaining("not incremental");
  }
}
