package io.loraspark.prep.tokenize;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerErrorsTest {

  @TempDir Path dir;

  private static AbstractThrowableAssert<?, ? extends Throwable> assertRejected(
      String what, Runnable action, String fileName) {
    return assertThatThrownBy(action::run)
        .as(what)
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(fileName)
        .hasMessageNotContaining("\n");
  }

  private Path write(String name, String content) throws IOException {
    return Files.writeString(dir.resolve(name), content);
  }

  private void copyStoriesTokenizer() throws IOException {
    Files.copy(Fixtures.STORIES_DIR.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
  }

  @Test
  void rejectsMissingTokenizerJson() {
    assertRejected("missing tokenizer.json", () -> TextTokenizer.load(dir), "tokenizer.json")
        .hasMessageContaining("missing");
  }

  @Test
  void rejectsMissingModelDirectory() {
    Path absent = dir.resolve("no-such-model");
    assertRejected("missing model dir", () -> TextTokenizer.load(absent), "no-such-model")
        .hasMessageContaining("not a directory");
  }

  @Test
  void rejectsMalformedTokenizerJson() throws IOException {
    write("tokenizer.json", "{\"model\": {\"type\": \"BPE\",");
    assertRejected("truncated tokenizer.json", () -> TextTokenizer.load(dir), "tokenizer.json")
        .hasMessageContaining("not valid JSON");
  }

  @Test
  void rejectsTokenizerJsonThatTokenizersCannotLoad() throws IOException {
    write("tokenizer.json", "{\"model\": {\"type\": \"NoSuchModel\", \"vocab\": {\"a\": 0}}}");
    assertRejected("unknown model type", () -> TextTokenizer.load(dir), "tokenizer.json")
        .hasMessageContaining("not a valid Hugging Face tokenizers file");
  }

  @Test
  void rejectsTokenizerJsonWithoutVocab() throws IOException {
    write("tokenizer.json", "{\"version\": \"1.0\"}");
    assertRejected("no model.vocab", () -> TextTokenizer.load(dir), "tokenizer.json")
        .hasMessageContaining("model.vocab");
  }

  @Test
  void rejectsMalformedTokenizerConfig() throws IOException {
    copyStoriesTokenizer();
    write("tokenizer_config.json", "{\"add_bos_token\": true,,}");
    assertRejected("bad JSON", () -> TextTokenizer.load(dir), "tokenizer_config.json")
        .hasMessageContaining("not valid JSON");
  }

  @Test
  void rejectsWronglyTypedTokenizerConfigValues() throws IOException {
    copyStoriesTokenizer();
    write("tokenizer_config.json", "{\"add_bos_token\": \"yes\"}");
    assertRejected("string add_bos_token", () -> TextTokenizer.load(dir), "tokenizer_config.json")
        .hasMessageContaining("add_bos_token must be true, false or null");
    write("tokenizer_config.json", "{\"bos_token\": \"<bos>\"}");
    assertRejected("unknown bos_token", () -> TextTokenizer.load(dir), "tokenizer_config.json")
        .hasMessageContaining("<bos>");
  }

  @Test
  void rejectsBadGenerationConfig() throws IOException {
    copyStoriesTokenizer();
    write("generation_config.json", "{\"eos_token_id\": \"2\"}");
    assertRejected("string eos id", () -> TextTokenizer.load(dir), "generation_config.json")
        .hasMessageContaining("eos_token_id");
    write("generation_config.json", "{\"eos_token_id\": [2, 9999]}");
    assertRejected("eos id beyond vocab", () -> TextTokenizer.load(dir), "generation_config.json")
        .hasMessageContaining("9999");
  }

  @Test
  void rejectsMergesFileWithBadLine() throws IOException {
    Path vocab = write("vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2}");
    Path merges = write("merges.txt", "#version: 0.2\na b\nab\n");
    assertRejected(
            "merge line without a space",
            () -> TextTokenizer.fromVocabAndMerges(vocab, merges),
            "merges.txt")
        .hasMessageContaining("line 3")
        .hasMessageContaining("\"a b\"");
  }

  @Test
  void rejectsMergeOfUnknownTokens() throws IOException {
    Path vocab = write("vocab.json", "{\"a\": 0, \"b\": 1}");
    Path merges = write("merges.txt", "#version: 0.2\na b\n");
    assertRejected(
            "merge result not in the vocabulary",
            () -> TextTokenizer.fromVocabAndMerges(vocab, merges),
            "merges.txt")
        .hasMessageContaining("\"ab\"");
  }

  @Test
  void rejectsMalformedOrMissingVocab() throws IOException {
    Path merges = write("merges.txt", "#version: 0.2\n");
    Path vocab = write("vocab.json", "[\"a\", \"b\"]");
    assertRejected(
            "array vocab", () -> TextTokenizer.fromVocabAndMerges(vocab, merges), "vocab.json")
        .hasMessageContaining("JSON object");
    write("vocab.json", "{\"a\": -1}");
    assertRejected(
            "negative id", () -> TextTokenizer.fromVocabAndMerges(vocab, merges), "vocab.json")
        .hasMessageContaining("non-negative");
    Path absent = dir.resolve("absent-vocab.json");
    assertRejected(
            "missing vocab",
            () -> TextTokenizer.fromVocabAndMerges(absent, merges),
            "absent-vocab.json")
        .hasMessageContaining("missing");
  }

  @Test
  void buildsTinyByteLevelBpe() throws IOException {
    Path vocab = write("vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2}");
    Path merges = write("merges.txt", "#version: 0.2\na b\n");
    try (TextTokenizer tok = TextTokenizer.fromVocabAndMerges(vocab, merges)) {
      org.assertj.core.api.Assertions.assertThat(tok.encode("abba", false))
          .as("tiny BPE 'abba'")
          .containsExactly(2, 1, 0);
    }
  }
}
