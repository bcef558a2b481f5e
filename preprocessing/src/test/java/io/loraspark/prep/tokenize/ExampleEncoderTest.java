package io.loraspark.prep.tokenize;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.prep.schema.Conversation;
import io.loraspark.prep.schema.RejectReason;
import io.loraspark.prep.schema.Role;
import io.loraspark.prep.schema.RowRejection;
import io.loraspark.prep.schema.Turn;
import io.loraspark.prep.shard.ShardSchema;
import io.loraspark.prep.template.AlpacaTemplate;
import io.loraspark.prep.template.Piece;
import io.loraspark.prep.template.PromptTemplate;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Alpaca rendering, tokenization and masking on the real stories260K tokenizer. */
class ExampleEncoderTest {
  static TextTokenizer tokenizer;
  static ExampleEncoder alpaca;

  @BeforeAll
  static void load() {
    tokenizer = TextTokenizer.load(Fixtures.STORIES_DIR);
    alpaca = new ExampleEncoder(tokenizer, new AlpacaTemplate());
  }

  @AfterAll
  static void close() {
    tokenizer.close();
  }

  static int[] scored(EncodedExample e) {
    return java.util.stream.IntStream.range(0, e.length())
        .filter(i -> e.labels()[i] != ShardSchema.IGNORE_INDEX)
        .map(i -> e.inputIds()[i])
        .toArray();
  }

  @Test
  void rendersTheStanfordPromptAndScoresOnlyTheResponseAndEos() {
    EncodedExample e =
        alpaca.encode(Conversation.single("Tell a story.", "", "Once upon a time, Lily ran."));
    assertThat(tokenizer.decode(e.inputIds(), true))
        .isEqualTo(
            "Below is an instruction that describes a task. Write a response that appropriately"
                + " completes the request.\n\n### Instruction:\nTell a story.\n\n### Response:\n"
                + "Once upon a time, Lily ran.");
    assertThat(e.inputIds()[0]).as("BOS").isEqualTo(tokenizer.bosId());
    int[] scored = scored(e);
    assertThat(scored[scored.length - 1]).as("EOS is scored").isEqualTo(tokenizer.eosId());
    assertThat(e.inputIds()[e.length() - 1]).as("EOS last").isEqualTo(tokenizer.eosId());
    assertThat(tokenizer.decode(Arrays.copyOf(scored, scored.length - 1), false))
        .as("decoded scored tokens")
        .isEqualTo("Once upon a time, Lily ran.");
    int firstScored = e.length() - scored.length;
    for (int i = 0; i < firstScored; i++) {
      assertThat(e.labels()[i]).as("prompt label %d", i).isEqualTo(ShardSchema.IGNORE_INDEX);
    }
    int[] promptIds =
        tokenizer.encode(tokenizer.decode(Arrays.copyOf(e.inputIds(), firstScored), true), true);
    assertThat(promptIds)
        .as("the prompt tokens are the prompt's own tokenization")
        .containsExactly(Arrays.copyOf(e.inputIds(), firstScored));
  }

  @Test
  void encodesPromptAndResponseTogetherLikeTheFullText() {
    Conversation c = Conversation.single("Sum.", "2 and 3", "It is 5. Done!");
    EncodedExample e = alpaca.encode(c);
    String text = tokenizer.decode(Arrays.copyOf(e.inputIds(), e.length() - 1), true);
    assertThat(text).contains("### Input:\n2 and 3\n\n### Response:\nIt is 5. Done!");
    assertThat(Arrays.copyOf(e.inputIds(), e.length() - 1))
        .as("same ids as tokenizer(prompt + response)")
        .containsExactly(tokenizer.encode(text, true));
  }

  @Test
  void masksEveryTurnOfAMultiTurnConversation() {
    Conversation c =
        new Conversation(
            List.of(
                Turn.of(Role.USER, "Hi."),
                Turn.of(Role.ASSISTANT, "Hello there."),
                Turn.of(Role.USER, "A cat?"),
                Turn.of(Role.ASSISTANT, "A cat sat.")));
    EncodedExample e = alpaca.encode(c);
    List<String> runs = new java.util.ArrayList<>();
    int i = 0;
    while (i < e.length()) {
      if (e.labels()[i] == ShardSchema.IGNORE_INDEX) {
        i++;
        continue;
      }
      int j = i;
      while (j < e.length() && e.labels()[j] != ShardSchema.IGNORE_INDEX) {
        j++;
      }
      runs.add(tokenizer.decode(Arrays.copyOfRange(e.inputIds(), i, j), false));
      i = j;
    }
    assertThat(runs).containsExactly("Hello there.</s>", "A cat sat.</s>");
    assertThat(tokenizer.decode(e.inputIds(), true))
        .contains("### Instruction:\nA cat?\n\n### Response:\nA cat sat.");
  }

  @Test
  void rejectsATokenThatStraddlesTheResponseBoundary() {
    // "Once upon" is [▁Once, ▁upon]: a boundary inside "upon" cannot be masked exactly
    PromptTemplate split =
        new PromptTemplate() {
          @Override
          public List<Piece> render(Conversation conversation) {
            return List.of(
                new Piece.Text("Once up", false),
                new Piece.Text("on a time", true),
                new Piece.Eos());
          }

          @Override
          public String name() {
            return "split";
          }
        };
    assertThatThrownBy(
            () -> new ExampleEncoder(tokenizer, split).encode(Conversation.single("a", "", "b")))
        .isInstanceOfSatisfying(
            RowRejection.class, e -> assertThat(e.reason()).isEqualTo(RejectReason.MASK_BOUNDARY))
        .hasMessageContaining("boundary");
  }

  @Test
  void spansCountCodePointsNotUtf16Units() {
    TokenSpans s = tokenizer.encodeWithSpans("😀a b", true);
    assertThat(s.ids()).containsExactly(tokenizer.encode("😀a b", true));
    assertThat(s.starts()[0]).as("BOS has no span").isEqualTo(-1);
    assertThat(s.starts()[s.size() - 1]).as("'▁b' starts at code point 2").isEqualTo(2);
    assertThat(s.ends()[s.size() - 1]).isEqualTo(4);
    EncodedExample e = alpaca.encode(Conversation.single("Smile 😀", "", "😀 é ok"));
    int[] scored = scored(e);
    assertThat(tokenizer.decode(Arrays.copyOf(scored, scored.length - 1), false))
        .isEqualTo("😀 é ok");
  }

  @Test
  void truncatesKeepingLabelsAligned() {
    EncodedExample e = alpaca.encode(Conversation.single("Tell a story.", "", "Once upon a time."));
    EncodedExample t = e.truncate(e.length() - 3);
    assertThat(t.length()).isEqualTo(e.length() - 3);
    assertThat(t.labels()).containsExactly(Arrays.copyOf(e.labels(), e.length() - 3));
    assertThat(t.labelTokens()).isEqualTo(e.labelTokens() - 3);
    assertThat(e.truncate(10_000)).isSameAs(e);
  }
}
