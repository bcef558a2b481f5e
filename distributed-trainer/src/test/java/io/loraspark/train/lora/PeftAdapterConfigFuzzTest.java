package io.loraspark.train.lora;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fuzzes {@code adapter_config.json} parsing. Contract: {@link PeftAdapterConfig#read} returns a
 * config that renders and parses back to itself, or throws {@link IllegalArgumentException} naming
 * the file; anything else is a bug. Corpus: {@code PeftAdapterConfigFuzzTestInputs/}.
 */
class PeftAdapterConfigFuzzTest {

  @TempDir static Path dir;

  @DictionaryEntries({
    "\"target_modules\"",
    "\"lora_alpha\"",
    "\"lora_dropout\"",
    "\"use_rslora\"",
    "\"peft_type\"",
    "\"LORA\"",
    "\"r\"",
    "\"q_proj\"",
    "\"down_proj\"",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e308",
    "[]",
    "{}"
  })
  @FuzzTest(maxDuration = "30s")
  void read(byte[] bytes) throws IOException {
    Path file = Files.write(dir.resolve(PeftAdapterConfig.FILE), bytes);
    LoraConfig config;
    try {
      config = PeftAdapterConfig.read(file);
    } catch (IllegalArgumentException e) {
      assertThat(e.getMessage()).as("names the file").contains(file.toString());
      return;
    }
    Files.writeString(file, PeftAdapterConfig.render(config, null));
    assertThat(PeftAdapterConfig.read(file)).as("render round trip").isEqualTo(config);
  }
}
