package io.loraspark.prep.tokenize;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fuzzes the tokenizer files of a model directory: {@code tokenizer_config.json} + {@code
 * generation_config.json} ({@link SpecialTokenConfig}), GPT-2 {@code vocab.json} + {@code
 * merges.txt} ({@link ByteLevelBpeJson}, then DJL) and {@code tokenizer.json} (DJL's Hugging Face
 * tokenizers). Two files come from one input split at its first NUL byte. Contract: loading
 * succeeds and the tokenizer encodes, or it throws {@link IllegalArgumentException} naming the
 * file; anything else is a bug. Corpus: {@code TokenizerFilesFuzzTestInputs/}.
 */
class TokenizerFilesFuzzTest {

  /** The libFuzzer dictionary the three methods share: a resource beside this class. */
  private static final String DICTIONARY = "TokenizerFilesFuzzTest.dict";

  private static final String PROBE = "Once upon a time, a <s> cat said: \"héllo\"\n";

  @TempDir static Path dir;

  /** tokenizer_config.json NUL generation_config.json (the second file absent without a NUL). */
  @DictionaryFile(resourcePath = DICTIONARY)
  @FuzzTest(maxDuration = "30s")
  void specialTokenConfig(byte[] bytes) throws IOException {
    Path model = fresh("special");
    byte[][] files = splitAtNul(bytes);
    Files.write(model.resolve(SpecialTokenConfig.TOKENIZER_CONFIG), files[0]);
    if (files[1] != null) {
      Files.write(model.resolve(SpecialTokenConfig.GENERATION_CONFIG), files[1]);
    }
    try {
      SpecialTokenConfig c = SpecialTokenConfig.read(model);
      assertThat(c.genEosIds()).allSatisfy(id -> assertThat(id).isNotNegative());
      c.modelMaxLength().ifPresent(n -> assertThat(n).isPositive());
    } catch (IllegalArgumentException e) {
      assertThat(e.getMessage()).as("names the file").contains(model.toString());
    }
  }

  /** vocab.json NUL merges.txt, built into a tokenizer.json and loaded by DJL. */
  @DictionaryFile(resourcePath = DICTIONARY)
  @FuzzTest(maxDuration = "30s")
  void vocabAndMerges(byte[] bytes) throws IOException {
    Path model = fresh("bpe");
    byte[][] files = splitAtNul(bytes);
    Path vocab = Files.write(model.resolve("vocab.json"), files[0]);
    Path merges =
        Files.write(model.resolve("merges.txt"), files[1] == null ? new byte[0] : files[1]);
    try (TextTokenizer t = TextTokenizer.fromVocabAndMerges(vocab, merges)) {
      checkEncodes(t);
    } catch (IllegalArgumentException e) {
      assertThat(e.getMessage()).as("names a file").contains(model.toString());
    }
  }

  /** tokenizer.json beside stories260K's tokenizer_config.json and generation_config.json. */
  @DictionaryFile(resourcePath = DICTIONARY)
  @FuzzTest(maxDuration = "30s")
  void tokenizerJson(byte[] bytes) throws IOException {
    Path model = fresh("hf");
    for (String name :
        new String[] {SpecialTokenConfig.TOKENIZER_CONFIG, SpecialTokenConfig.GENERATION_CONFIG}) {
      Files.copy(Fixtures.STORIES_DIR.resolve(name), model.resolve(name));
    }
    Files.write(model.resolve(TextTokenizer.TOKENIZER_JSON), bytes);
    try (TextTokenizer t = TextTokenizer.load(model)) {
      checkEncodes(t);
    } catch (IllegalArgumentException e) {
      assertThat(e.getMessage()).as("names a file").contains(model.toString());
    }
  }

  private static void checkEncodes(TextTokenizer t) {
    int[] ids = t.encode(PROBE, true);
    for (int id : ids) {
      assertThat(id).as("token id").isBetween(0, t.vocabSize() - 1);
    }
    assertThat(t.decode(ids, true)).isNotNull();
  }

  private static Path fresh(String name) throws IOException {
    Path model = dir.resolve(name);
    if (Files.exists(model)) {
      try (var files = Files.list(model)) {
        for (Path f : files.toList()) {
          Files.delete(f);
        }
      }
    }
    return Files.createDirectories(model);
  }

  private static byte[][] splitAtNul(byte[] bytes) {
    for (int i = 0; i < bytes.length; i++) {
      if (bytes[i] == 0) {
        return new byte[][] {
          Arrays.copyOfRange(bytes, 0, i), Arrays.copyOfRange(bytes, i + 1, bytes.length)
        };
      }
    }
    return new byte[][] {bytes, null};
  }
}
