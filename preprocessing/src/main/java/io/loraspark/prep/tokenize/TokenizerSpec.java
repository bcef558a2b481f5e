package io.loraspark.prep.tokenize;

import io.loraspark.prep.schema.Conversation;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The tokenizer files of a model directory as bytes, small enough to broadcast, so executors load
 * exactly the driver's tokenizer even where the model directory is not mounted.
 *
 * @param modelDir the driver's model directory (for messages and the cache key)
 * @param contentHash {@link TextTokenizer#contentHash()} of tokenizer.json
 * @param files file name → bytes: tokenizer.json and, when present, tokenizer_config.json,
 *     generation_config.json and chat_template.jinja
 */
public record TokenizerSpec(String modelDir, String contentHash, Map<String, byte[]> files)
    implements Serializable {

  /** The files a tokenizer may need. */
  static final List<String> FILES =
      List.of(
          TextTokenizer.TOKENIZER_JSON,
          SpecialTokenConfig.TOKENIZER_CONFIG,
          SpecialTokenConfig.GENERATION_CONFIG,
          SpecialTokenConfig.CHAT_TEMPLATE_FILE);

  /** Copies the file map (sorted by name). */
  public TokenizerSpec {
    files = new TreeMap<>(files);
  }

  /**
   * Reads the tokenizer files of {@code modelDir}.
   *
   * @param contentHash the hash of the tokenizer loaded from it on the driver
   */
  public static TokenizerSpec read(Path modelDir, String contentHash) {
    Map<String, byte[]> files = new TreeMap<>();
    for (String name : FILES) {
      Path file = modelDir.resolve(name);
      if (Files.isRegularFile(file)) {
        try {
          files.put(name, Files.readAllBytes(file));
        } catch (IOException e) {
          throw new UncheckedIOException("cannot read " + file, e);
        }
      }
    }
    return new TokenizerSpec(modelDir.toString(), contentHash, files);
  }

  /** SHA-256 over every file's name and bytes: changes when any tokenizer setting changes. */
  public String key() {
    MessageDigest digest = Conversation.sha256();
    for (Map.Entry<String, byte[]> e : files.entrySet()) {
      digest.update(e.getKey().getBytes(StandardCharsets.UTF_8));
      digest.update((byte) 0);
      digest.update(e.getValue());
      digest.update((byte) 0);
    }
    return HexFormat.of().formatHex(digest.digest());
  }
}
