package io.loraspark.prep.tokenize;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One {@link TextTokenizer} per executor JVM and tokenizer: tasks look it up by {@link
 * TokenizerSpec#key()} (model directory + hash of its files) instead of loading one per task or
 * row, and it is never shipped in a closure. Tokenizers live until the JVM exits.
 */
public final class TokenizerCache {

  private static final Map<String, TextTokenizer> CACHE = new ConcurrentHashMap<>();
  private static final AtomicInteger LOADS = new AtomicInteger();

  private TokenizerCache() {}

  /**
   * The JVM's tokenizer for {@code spec}, loaded on first use from the spec's bytes (written to a
   * private temporary directory).
   *
   * @throws IllegalStateException if the loaded tokenizer's hash differs from the spec's
   */
  public static TextTokenizer get(TokenizerSpec spec) {
    return CACHE.computeIfAbsent(spec.modelDir() + "#" + spec.key(), k -> load(spec));
  }

  /** How many tokenizers this JVM has loaded through the cache (for tests and logs). */
  public static int loads() {
    return LOADS.get();
  }

  private static TextTokenizer load(TokenizerSpec spec) {
    try {
      Path dir = Files.createTempDirectory("lora-spark-tokenizer-");
      dir.toFile().deleteOnExit();
      for (Map.Entry<String, byte[]> e : spec.files().entrySet()) {
        File f = Files.write(dir.resolve(e.getKey()), e.getValue()).toFile();
        f.deleteOnExit();
      }
      TextTokenizer tokenizer = TextTokenizer.load(dir);
      if (!tokenizer.contentHash().equals(spec.contentHash())) {
        tokenizer.close();
        throw new IllegalStateException(
            "tokenizer of "
                + spec.modelDir()
                + " changed: hash "
                + tokenizer.contentHash()
                + " but the driver loaded "
                + spec.contentHash());
      }
      LOADS.incrementAndGet();
      return tokenizer;
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cannot write the tokenizer of " + spec.modelDir() + " to a temporary directory", e);
    }
  }
}
