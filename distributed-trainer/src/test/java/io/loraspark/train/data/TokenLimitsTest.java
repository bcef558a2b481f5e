package io.loraspark.train.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.TokenRow;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Token rows are checked against the model when read, naming the file, line and position. */
class TokenLimitsTest {

  /** stories260K: V = 512, max_position_embeddings = 512. */
  static final TokenLimits STORIES =
      TokenLimits.of(ModelConfig.load(Path.of("../models/stories260K")));

  @TempDir Path tmp;

  @Test
  void limitsComeFromTheModelConfig() {
    assertThat(STORIES).isEqualTo(new TokenLimits(512, 512));
  }

  @Test
  void idsAndLabelsInsideTheVocabularyPass() {
    TokenRow row = new TokenRow(new int[] {0, 511, 7}, new int[] {-100, 511, 0});
    STORIES.check(row);
    assertThat(row.length()).isEqualTo(3);
  }

  @Test
  void idOutsideTheVocabularyIsRejectedWithFileAndLine() throws IOException {
    Path file = jsonl("{\"input_ids\": [1, 2]}\n\n{\"input_ids\": [1, 512, 3]}\n");
    assertThatThrownBy(() -> TokenRowsJsonl.read(file, STORIES))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(file + " line 3: input_ids[1] is 512, outside the model's vocabulary [0, 512)");
  }

  @Test
  void negativeIdIsRejected() throws IOException {
    Path file = jsonl("{\"input_ids\": [-1]}\n");
    assertThatThrownBy(() -> TokenRowsJsonl.read(file, STORIES))
        .hasMessageContaining("line 1: input_ids[0] is -1, outside the model's vocabulary");
  }

  @Test
  void labelOutsideTheVocabularyIsRejectedButIgnoreIsNot() throws IOException {
    Path ok = jsonl("{\"input_ids\": [1, 2], \"labels\": [-100, 2]}\n");
    Path bad = jsonl("{\"input_ids\": [1, 2], \"labels\": [-1, 2]}\n");
    assertThat(TokenRowsJsonl.read(ok, STORIES)).hasSize(1);
    assertThatThrownBy(() -> TokenRowsJsonl.read(bad, STORIES))
        .hasMessageContaining(
            "line 1: labels[0] is -1; a label must be -100 (not scored) or inside the vocabulary"
                + " [0, 512)");
  }

  @Test
  void rowLongerThanTheContextIsRejected() {
    TokenLimits small = new TokenLimits(512, 4);
    assertThatThrownBy(() -> small.check(TokenRow.unmasked(new int[] {1, 2, 3, 4, 5})))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "the row has 5 tokens but the model takes at most 4 (max_position_embeddings);"
                + " preprocess with --max-seq-len 4 or less");
  }

  @Test
  void packedRowIsLimitedPerExampleBecausePositionsRestart() {
    TokenLimits small = new TokenLimits(512, 3);
    int[] ids = {1, 2, 3, 4, 5, 6};
    small.check(new TokenRow(ids, ids.clone(), new int[] {1, 1, 1, 2, 2, 2}));
    assertThatThrownBy(
            () -> small.check(new TokenRow(ids, ids.clone(), new int[] {1, 1, 2, 2, 2, 2})))
        .hasMessageStartingWith("packed example 2 has 4 tokens but the model takes at most 3");
  }

  @Test
  void limitsMustBePositive() {
    assertThatThrownBy(() -> new TokenLimits(0, 8)).hasMessage("vocabSize must be > 0 but was 0");
    assertThatThrownBy(() -> new TokenLimits(8, -1))
        .hasMessage("maxPositions must be > 0 but was -1");
  }

  private Path jsonl(String text) throws IOException {
    return Files.writeString(Files.createTempFile(tmp, "rows", ".jsonl"), text);
  }
}
