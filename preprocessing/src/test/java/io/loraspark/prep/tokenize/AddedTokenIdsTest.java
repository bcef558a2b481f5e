package io.loraspark.prep.tokenize;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * tokenizer.json files that DJL's tokenizers loads but that would break later, found by
 * TokenizerFilesFuzzTest#tokenizerJson: an added token whose content is missing from {@code
 * model.vocab} gets an id past the declared vocabulary (512 of 512), and an unknown token missing
 * from the vocabulary fails every text that needs it. The loader refuses both, naming the file.
 */
class AddedTokenIdsTest {

  @TempDir Path dir;

  @Test
  void addedTokenMissingFromTheVocabularyIsRefusedAtLoad() throws IOException {
    String json =
        Files.readString(Fixtures.STORIES_DIR.resolve("tokenizer.json"), StandardCharsets.UTF_8);
    assertThat(json).contains("\"<s>\": 1");
    Files.writeString(dir.resolve("tokenizer.json"), json.replace("\"<s>\": 1", "\"<s~\": 1"));
    Path file = dir.resolve("tokenizer.json");
    assertThatThrownBy(() -> TextTokenizer.load(dir))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            file
                + ": tokenizers assigns id 512, outside the 512 ids that model.vocab and"
                + " added_tokens declare; is an added_tokens entry's content missing from"
                + " model.vocab?");
  }

  @Test
  void theBundledTokenizerPassesTheCheck() {
    try (TextTokenizer t = TextTokenizer.load(Fixtures.STORIES_DIR)) {
      assertThat(t.vocabSize()).isEqualTo(512);
      assertThat(t.encode("<s>", false)).containsExactly(1);
    }
  }

  @Test
  void unknownTokenMissingFromTheVocabularyIsRefusedAtLoad() throws IOException {
    // found by TokenizerFilesFuzzTest#tokenizerJson: tokenizers loaded it, then every text that
    // needed the unknown token failed to encode ("Unk token `<unk(` not found in the vocabulary")
    String json =
        Files.readString(Fixtures.STORIES_DIR.resolve("tokenizer.json"), StandardCharsets.UTF_8);
    assertThat(json).contains("\"unk_token\": \"<unk>\"");
    Files.writeString(
        dir.resolve("tokenizer.json"),
        json.replace("\"unk_token\": \"<unk>\"", "\"unk_token\": \"<unk(\""));
    assertThatThrownBy(() -> TextTokenizer.load(dir))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            dir.resolve("tokenizer.json")
                + ": model.unk_token \"<unk(\" is not in model.vocab; name a token of the vocab");
  }

  @Test
  void templateNamingAnUndefinedSpecialTokenIsRefusedBeforeTokenizersCanAbortTheJvm()
      throws IOException {
    // found by TokenizerFilesFuzzTest#tokenizerJson: tokenizers panicked in template.rs while
    // encoding and the Rust abort killed the test JVM
    com.fasterxml.jackson.databind.node.ObjectNode root =
        (com.fasterxml.jackson.databind.node.ObjectNode)
            Fixtures.MAPPER.readTree(Fixtures.STORIES_DIR.resolve("tokenizer.json").toFile());
    com.fasterxml.jackson.databind.node.ObjectNode special =
        (com.fasterxml.jackson.databind.node.ObjectNode)
            root.path("post_processor").path("special_tokens");
    assertThat(special.has("<s>")).isTrue();
    special.set("-1<s>", special.remove("<s>"));
    Files.writeString(dir.resolve("tokenizer.json"), Fixtures.MAPPER.writeValueAsString(root));
    assertThatThrownBy(() -> TextTokenizer.load(dir))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            dir.resolve("tokenizer.json")
                + ": post_processor.single uses special token \"<s>\", which"
                + " post_processor.special_tokens does not define");
  }
}
