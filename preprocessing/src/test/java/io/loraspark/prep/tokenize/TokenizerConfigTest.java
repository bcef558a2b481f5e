package io.loraspark.prep.tokenize;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Special-token rules on variants of the stories260K tokenizer written to a temporary dir. */
class TokenizerConfigTest {

  @TempDir Path dir;

  /** Copies stories260K's tokenizer.json, with or without its BOS-adding post-processor. */
  private void writeTokenizerJson(boolean withPostProcessor) throws IOException {
    ObjectNode json =
        (ObjectNode)
            Fixtures.MAPPER.readTree(Fixtures.STORIES_DIR.resolve("tokenizer.json").toFile());
    if (!withPostProcessor) {
      json.putNull("post_processor");
    }
    Fixtures.MAPPER.writeValue(dir.resolve("tokenizer.json").toFile(), json);
  }

  private void write(String name, String content) throws IOException {
    Files.writeString(dir.resolve(name), content);
  }

  @Test
  void addsBosFromConfigWhenTokenizerJsonHasNoPostProcessor() throws IOException {
    writeTokenizerJson(false);
    write("tokenizer_config.json", "{\"add_bos_token\": true, \"bos_token\": \"<s>\"}");
    try (TextTokenizer tok = TextTokenizer.load(dir)) {
      assertThat(tok.encode("Lily", true)).as("BOS from add_bos_token").containsExactly(1, 317);
      assertThat(tok.encode("<s>Lily", true)).as("no double BOS").containsExactly(1, 317);
      assertThat(tok.encode("Lily", false)).as("no specials").containsExactly(317);
    }
  }

  @Test
  void llamaTokenizerClassAddsBosByDefault() throws IOException {
    writeTokenizerJson(false);
    write(
        "tokenizer_config.json",
        "{\"tokenizer_class\": \"LlamaTokenizer\", \"bos_token\": \"<s>\"}");
    try (TextTokenizer tok = TextTokenizer.load(dir)) {
      assertThat(tok.encode("Lily", true)).as("LlamaTokenizer default BOS").containsExactly(1, 317);
    }
  }

  @Test
  void addsNoBosWithoutPostProcessorOrConfig() throws IOException {
    writeTokenizerJson(false);
    try (TextTokenizer tok = TextTokenizer.load(dir)) {
      assertThat(tok.encode("Lily", true)).as("nothing asks for BOS").containsExactly(317);
      assertThat(tok.bosId()).as("no config, no BOS id").isEqualTo(-1);
      assertThat(tok.eosId()).as("no config, no EOS id").isEqualTo(-1);
    }
  }

  @Test
  void postProcessorBosIsNotRepeatedAndEosIsAppendedWhenConfigured() throws IOException {
    writeTokenizerJson(true);
    write(
        "tokenizer_config.json",
        "{\"add_bos_token\": true, \"add_eos_token\": true,"
            + " \"bos_token\": {\"content\": \"<s>\", \"__type\": \"AddedToken\"},"
            + " \"eos_token\": \"</s>\", \"pad_token\": \"<unk>\"}");
    try (TextTokenizer tok = TextTokenizer.load(dir)) {
      assertThat(tok.encode("Lily", true)).as("BOS once, EOS appended").containsExactly(1, 317, 2);
      assertThat(tok.bosId()).as("AddedToken-style bos_token").isEqualTo(1);
      assertThat(tok.padId()).as("pad_token <unk>").isEqualTo(0);
      assertThat(tok.decode(new int[] {1, 317, 2, 0}, true))
          .as("skip BOS/EOS/PAD")
          .isEqualTo("Lily");
    }
  }

  @Test
  void generationConfigFirstEosWins() throws IOException {
    writeTokenizerJson(true);
    write("tokenizer_config.json", "{\"eos_token\": \"<unk>\", \"bos_token\": \"<s>\"}");
    write("generation_config.json", "{\"bos_token_id\": 1, \"eos_token_id\": [2, 0]}");
    try (TextTokenizer tok = TextTokenizer.load(dir)) {
      assertThat(tok.eosId()).as("first generation_config eos id").isEqualTo(2);
      assertThat(tok.eosIds()).as("all generation_config eos ids").containsExactly(2, 0);
    }
  }

  @Test
  void generationConfigSuppliesIdsWithoutTokenizerConfig() throws IOException {
    writeTokenizerJson(true);
    write(
        "generation_config.json",
        "{\"bos_token_id\": 1, \"eos_token_id\": 2, \"pad_token_id\": 0}");
    try (TextTokenizer tok = TextTokenizer.load(dir)) {
      assertThat(tok.bosId()).as("bos_token_id").isEqualTo(1);
      assertThat(tok.eosId()).as("int eos_token_id").isEqualTo(2);
      assertThat(tok.padId()).as("pad_token_id").isEqualTo(0);
      assertThat(tok.encode("Lily", true)).as("post-processor BOS").containsExactly(1, 317);
    }
  }

  @Test
  void readsChatTemplateFromConfigListOrJinjaFile() throws IOException {
    writeTokenizerJson(true);
    write(
        "tokenizer_config.json",
        "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"},"
            + " {\"name\": \"default\", \"template\": \"{{ messages }}\"}]}");
    try (TextTokenizer tok = TextTokenizer.load(dir)) {
      assertThat(tok.chatTemplate()).as("default entry of a named list").hasValue("{{ messages }}");
    }
    write("tokenizer_config.json", "{\"model_max_length\": 1e30}");
    write("chat_template.jinja", "{% for m in messages %}{{ m }}{% endfor %}");
    try (TextTokenizer tok = TextTokenizer.load(dir)) {
      assertThat(tok.chatTemplate())
          .as("chat_template.jinja")
          .hasValue("{% for m in messages %}{{ m }}{% endfor %}");
      assertThat(tok.modelMaxLength()).as("unlimited model_max_length").isEmpty();
    }
  }
}
