package io.loraspark.prep.tokenize;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class Gpt2TokenizerTest {

  private static TextTokenizer tokenizer;

  @BeforeAll
  static void load() {
    tokenizer =
        TextTokenizer.fromVocabAndMerges(
            Fixtures.GPT2_DIR.resolve("vocab.json"), Fixtures.GPT2_DIR.resolve("merges.txt"));
  }

  @AfterAll
  static void close() {
    tokenizer.close();
  }

  @Test
  void reproducesGpt2ReferenceVectors() {
    JsonNode vectors = Fixtures.reference("gpt2_tokenizer_vectors.json").get("vectors");
    assertThat(vectors).as("GPT-2 vectors").hasSize(10);
    for (JsonNode vector : vectors) {
      String text = vector.get("text").asText();
      int[] expected = Fixtures.ints(vector.get("ids"));
      assertThat(tokenizer.encode(text, false)).as("encode('%s')", text).containsExactly(expected);
      assertThat(tokenizer.encode(text, true))
          .as("encode('%s') with specials adds nothing", text)
          .containsExactly(expected);
      assertThat(tokenizer.decode(expected, false)).as("decode of '%s'", text).isEqualTo(text);
    }
  }

  @Test
  void usesEndOfTextAsBosAndEos() {
    int eos = Fixtures.reference("gpt2_tokenizer_vectors.json").get("eos_id").intValue();
    assertThat(tokenizer.eosId()).as("EOS <|endoftext|>").isEqualTo(eos);
    assertThat(tokenizer.bosId()).as("BOS <|endoftext|>").isEqualTo(eos);
    assertThat(tokenizer.padId()).as("no pad").isEqualTo(-1);
    assertThat(tokenizer.vocabSize()).as("GPT-2 vocabulary").isEqualTo(50257);
    assertThat(tokenizer.chatTemplate()).as("no chat template").isEmpty();
  }

  @Test
  void decodeSkipsEndOfTextOnlyWhenAsked() {
    int[] ids = {15496, 995, 50256};
    assertThat(tokenizer.decode(ids, true)).as("skip <|endoftext|>").isEqualTo("Hello world");
    assertThat(tokenizer.decode(ids, false))
        .as("keep <|endoftext|>")
        .isEqualTo("Hello world<|endoftext|>");
  }

  @Test
  void generatesDeterministicTokenizerJson() {
    try (TextTokenizer again =
        TextTokenizer.fromVocabAndMerges(
            Fixtures.GPT2_DIR.resolve("vocab.json"), Fixtures.GPT2_DIR.resolve("merges.txt"))) {
      assertThat(again.contentHash())
          .as("content hash of the generated tokenizer.json")
          .isEqualTo(tokenizer.contentHash())
          .hasSize(64);
    }
  }
}
