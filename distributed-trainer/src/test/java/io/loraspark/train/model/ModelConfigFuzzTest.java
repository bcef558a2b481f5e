package io.loraspark.train.model;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fuzzes Hugging Face {@code config.json} parsing. Contract: {@link ModelConfig#load} returns a
 * config whose derived widths are positive, or throws {@link IllegalArgumentException} naming the
 * file; anything else is a bug. Corpus: {@code ModelConfigFuzzTestInputs/}.
 */
class ModelConfigFuzzTest {

  @TempDir static Path dir;

  @DictionaryEntries({
    "\"head_dim\"",
    "\"num_attention_heads\"",
    "\"num_key_value_heads\"",
    "\"hidden_size\"",
    "\"intermediate_size\"",
    "\"vocab_size\"",
    "\"max_position_embeddings\"",
    "\"model_type\"",
    "\"qwen2\"",
    "\"mistral\"",
    "null",
    "0",
    "-1",
    "2147483647",
    "1e-300",
    "\"rope_theta\"",
    "\"rms_norm_eps\"",
    "\"tie_word_embeddings\"",
    "\"attention_bias\"",
    "\"eos_token_id\"",
    "[]"
  })
  @FuzzTest(maxDuration = "30s")
  void load(byte[] bytes) throws IOException {
    Path file = Files.write(dir.resolve("config.json"), bytes);
    try {
      ModelConfig c = ModelConfig.load(dir);
      assertThat(c.qDim()).as("num_attention_heads * head_dim").isPositive();
      assertThat(c.kvDim()).as("num_key_value_heads * head_dim").isPositive();
    } catch (IllegalArgumentException e) {
      assertThat(e.getMessage()).as("names the file").contains(file.toString());
    }
  }
}
