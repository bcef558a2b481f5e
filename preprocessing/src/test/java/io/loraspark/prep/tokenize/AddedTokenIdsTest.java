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
 * Found by TokenizerFilesFuzzTest#tokenizerJson: an added token whose content is missing from
 * {@code model.vocab} gets id 512 from tokenizers although the file declares 512 ids, so encoding
 * "&lt;s&gt;" produced an id the model's embedding does not have. The loader now refuses the file.
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
}
