package io.loraspark.prep.tokenize;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class StoriesTokenizerTest {

  private static TextTokenizer tokenizer;

  @BeforeAll
  static void load() {
    tokenizer = TextTokenizer.load(Fixtures.STORIES_DIR);
  }

  @AfterAll
  static void close() {
    tokenizer.close();
  }

  @Test
  void reproducesStoriesReferenceIds() {
    JsonNode ref = Fixtures.reference("stories260K_input_ids.json");
    String text = ref.get("text").asText();
    int[] expected = Fixtures.ints(ref.get("ids"));

    int[] ids = tokenizer.encode(text, true);

    assertThat(expected).as("fixture size").hasSize(206);
    assertThat(ids).as("encode(stories260K reference text, BOS)").containsExactly(expected);
    assertThat(tokenizer.decode(ids, true)).as("decode(reference ids) round trip").isEqualTo(text);
  }

  @Test
  void reproducesLlama2cEncodeVectors() {
    JsonNode vectors = Fixtures.reference("llama2c_greedy_vectors.json").get("encode_vectors");
    assertThat(vectors).as("llama2.c encode vectors").hasSize(5);
    for (JsonNode vector : vectors) {
      String text = vector.get("text").asText();
      int[] expected = Fixtures.ints(vector.get("ids"));
      assertThat(expected[0]).as("llama2.c vector for '%s' starts with BOS", text).isEqualTo(1);
      assertThat(tokenizer.encode(text, true))
          .as("encode('%s', BOS)", text)
          .containsExactly(expected);
      assertThat(tokenizer.decode(expected, true)).as("decode of '%s'", text).isEqualTo(text);
    }
  }

  @Test
  void reproducesLlama2cPromptIds() {
    JsonNode ref = Fixtures.reference("llama2c_greedy_vectors.json");
    assertThat(tokenizer.encode(ref.get("prompt").asText(), true))
        .as("prompt ids of the greedy reference")
        .containsExactly(Fixtures.ints(ref.get("prompt_ids")));
  }

  @Test
  void detectsSpecialTokensOfModelDirectory() {
    assertThat(tokenizer.bosId()).as("BOS <s>").isEqualTo(1);
    assertThat(tokenizer.eosId()).as("EOS </s>").isEqualTo(2);
    assertThat(tokenizer.eosIds()).as("all EOS ids").containsExactly(2);
    assertThat(tokenizer.padId()).as("pad_token null").isEqualTo(-1);
    assertThat(tokenizer.vocabSize()).as("tok512 vocabulary").isEqualTo(512);
    assertThat(tokenizer.chatTemplate()).as("no chat template").isEmpty();
    assertThat(tokenizer.modelMaxLength()).as("model_max_length").hasValue(512);
    assertThat(tokenizer.contentHash())
        .as("sha256 of tokenizer.json, as in SOURCES.md")
        .isEqualTo("dcf6295d6dd73e048c4b21edabb9720e12326e49d9ffcbb6f3c0b097cbc68372");
  }

  @Test
  void addsSpecialTokensOnlyWhenAsked() {
    assertThat(tokenizer.encode("Lily", false)).as("no specials").containsExactly(317);
    assertThat(tokenizer.encode("Lily", true)).as("BOS, no EOS").containsExactly(1, 317);
    assertThat(tokenizer.encode("", false)).as("empty text, no specials").isEmpty();
  }

  @Test
  void neverAddsBosTwice() {
    assertThat(tokenizer.encode("<s>Lily", true))
        .as("text that already starts with <s>")
        .containsExactly(1, 317);
    assertThat(tokenizer.encode("<s>Lily", false))
        .as("literal <s> without specials")
        .containsExactly(1, 317);
  }

  @Test
  void decodeSkipsOrKeepsSpecialTokens() {
    int[] ids = {1, 403, 407, 2};
    assertThat(tokenizer.decode(ids, true)).as("skip specials").isEqualTo("Once upon");
    assertThat(tokenizer.decode(ids, false))
        .as("keep specials")
        .contains("<s>")
        .contains("</s>")
        .contains("Once upon");
    assertThatThrownBy(() -> tokenizer.decode(new int[] {512}, true))
        .as("id beyond the vocabulary")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("512");
  }

  @Test
  void encodesConcurrentlyLikeSequentially() throws Exception {
    String text = Fixtures.reference("stories260K_input_ids.json").get("text").asText();
    int[] expected = tokenizer.encode(text, true);
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<int[]>> results = new ArrayList<>();
      for (int i = 0; i < 64; i++) {
        results.add(pool.submit(() -> tokenizer.encode(text, true)));
      }
      for (Future<int[]> result : results) {
        assertThat(result.get()).as("concurrent encode").containsExactly(expected);
      }
    } finally {
      pool.shutdown();
    }
  }

  @Test
  void putsDjlInOfflineMode() {
    if (System.getenv("DJL_OFFLINE") == null) {
      assertThat(System.getProperty("ai.djl.offline"))
          .as("ai.djl.offline after loading a tokenizer")
          .isEqualTo("true");
    }
  }

  @Test
  void rejectsUseAfterClose() {
    TextTokenizer own = TextTokenizer.load(Fixtures.STORIES_DIR);
    own.close();
    own.close();
    assertThatThrownBy(() -> own.encode("Lily", true))
        .as("encode after close")
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("closed");
  }
}
