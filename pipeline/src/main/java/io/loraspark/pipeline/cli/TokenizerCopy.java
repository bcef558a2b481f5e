package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.prep.tokenize.ByteLevelBpeJson;
import io.loraspark.prep.tokenize.TextTokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.stream.Stream;

/**
 * {@code bench --write-model --tokenizer DIR}: a real tokenizer for a synthetic checkpoint, so that
 * {@code serve} and {@code generate} can tokenize text for it. DIR is either a Hugging Face
 * tokenizer directory ({@code tokenizer.json}, plus {@code tokenizer_config.json} and {@code
 * special_tokens_map.json} when present) or a GPT-2 {@code vocab.json} + {@code merges.txt} pair
 * such as the bundled {@code fixtures/tokenizers/gpt2}, which becomes a {@code tokenizer.json} and
 * a {@code tokenizer_config.json} naming {@code <|endoftext|>} as BOS and EOS (GPT-2's, not added
 * to prompts). The model's vocabulary is sized to the tokenizer. Provenance: DIR's licence and
 * notice files are copied along, and {@code tokenizer_source.json} records DIR and the SHA-256 of
 * the {@code tokenizer.json} written.
 */
final class TokenizerCopy {
  static final String SOURCE_FILE = "tokenizer_source.json";
  private static final List<String> HF_FILES =
      List.of(TextTokenizer.TOKENIZER_JSON, "tokenizer_config.json", "special_tokens_map.json");
  private static final String GPT2_END = "<|endoftext|>";
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path dir;
  private final int vocabSize;
  private final byte[] builtJson; // for a vocab.json + merges.txt pair; null for tokenizer.json

  /**
   * @throws IllegalArgumentException naming DIR when it holds neither tokenizer.json nor a
   *     vocab.json + merges.txt pair, or those files are not a valid tokenizer
   */
  TokenizerCopy(Path dir) {
    this.dir = dir;
    if (Files.isRegularFile(dir.resolve(TextTokenizer.TOKENIZER_JSON))) {
      this.builtJson = null;
      try (TextTokenizer t = TextTokenizer.load(dir)) {
        this.vocabSize = t.vocabSize();
      }
    } else if (Files.isRegularFile(dir.resolve("vocab.json"))
        && Files.isRegularFile(dir.resolve("merges.txt"))) {
      this.builtJson = ByteLevelBpeJson.build(dir.resolve("vocab.json"), dir.resolve("merges.txt"));
      try (TextTokenizer t =
          TextTokenizer.fromVocabAndMerges(dir.resolve("vocab.json"), dir.resolve("merges.txt"))) {
        this.vocabSize = t.vocabSize();
      }
    } else {
      throw new IllegalArgumentException(
          "--tokenizer "
              + dir
              + ": holds neither tokenizer.json nor vocab.json and merges.txt (a Hugging Face"
              + " tokenizer directory, or fixtures/tokenizers/gpt2)");
    }
  }

  /** The tokenizer's vocabulary size: the model's V. */
  int vocabSize() {
    return vocabSize;
  }

  /**
   * Writes the tokenizer files into the checkpoint directory {@code model}, a
   * generation_config.json with the tokenizer's BOS and EOS ids, the same ids into its config.json
   * (a tokenizer without one leaves its key out), and the provenance.
   */
  void writeInto(Path model) {
    try {
      if (builtJson == null) {
        for (String f : HF_FILES) {
          if (Files.isRegularFile(dir.resolve(f))) {
            Files.copy(dir.resolve(f), model.resolve(f), StandardCopyOption.REPLACE_EXISTING);
          }
        }
      } else {
        Files.write(model.resolve(TextTokenizer.TOKENIZER_JSON), builtJson);
        ObjectNode config = JSON.createObjectNode();
        config.put("tokenizer_class", "GPT2Tokenizer");
        config.put("bos_token", GPT2_END).put("eos_token", GPT2_END);
        config.put("add_bos_token", false);
        Files.writeString(model.resolve("tokenizer_config.json"), config.toPrettyString());
      }
      copyNotices(model);
      int bos;
      int eos;
      try (TextTokenizer written = TextTokenizer.load(model)) {
        bos = written.bosId();
        eos = written.eosId();
        ObjectNode source = JSON.createObjectNode();
        source.put("source", dir.toAbsolutePath().normalize().toString());
        source.put("tokenizer_json_sha256", written.contentHash());
        source.put("note", "copied by lora-pipeline bench --write-model --tokenizer");
        Files.writeString(model.resolve(SOURCE_FILE), source.toPrettyString());
      }
      ObjectNode generation = JSON.createObjectNode();
      putIds(generation, bos, eos);
      Files.writeString(model.resolve("generation_config.json"), generation.toPrettyString());
      Path configJson = model.resolve("config.json");
      ObjectNode config = (ObjectNode) JSON.readTree(configJson.toFile());
      config.remove(List.of("bos_token_id", "eos_token_id"));
      putIds(config, bos, eos);
      Files.writeString(configJson, config.toPrettyString());
    } catch (IOException e) {
      throw new UncheckedIOException(model + ": cannot write the tokenizer files: " + e, e);
    }
  }

  /** The BOS and EOS ids the tokenizer has (-1: it has none, and the key stays out). */
  private static void putIds(ObjectNode json, int bos, int eos) {
    if (bos >= 0) {
      json.put("bos_token_id", bos);
    }
    if (eos >= 0) {
      json.put("eos_token_id", eos);
    }
  }

  /** DIR's LICENSE*, NOTICE*, README* and SOURCES* files. */
  private void copyNotices(Path model) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        String name = f.getFileName().toString().toUpperCase(java.util.Locale.ROOT);
        if (name.startsWith("LICENSE")
            || name.startsWith("NOTICE")
            || name.startsWith("README")
            || name.startsWith("SOURCES")) {
          Files.copy(
              f,
              model.resolve("tokenizer-" + f.getFileName()),
              StandardCopyOption.REPLACE_EXISTING);
        }
      }
    }
  }
}
