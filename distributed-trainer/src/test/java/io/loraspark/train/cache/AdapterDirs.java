package io.loraspark.train.cache;

import io.loraspark.train.lora.PeftAdapter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Small real adapter directories for the cache tests: a config file and a weights file of a chosen
 * size, loaded as the weights' bytes, so a value's size is the file's size.
 */
final class AdapterDirs {
  private AdapterDirs() {}

  /** Creates {@code parent/name/} with adapter_config.json and {@code bytes} bytes of weights. */
  static Path adapter(Path parent, String name, int bytes) {
    try {
      Path dir = Files.createDirectories(parent.resolve(name));
      Files.writeString(dir.resolve(PeftAdapter.CONFIG_FILE), "{\"r\": 4}");
      byte[] weights = new byte[bytes];
      for (int i = 0; i < bytes; i++) {
        weights[i] = (byte) (name.hashCode() + i);
      }
      Files.write(dir.resolve(PeftAdapter.WEIGHTS_FILE), weights);
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Loads an adapter as the bytes of its weights file. */
  static byte[] readWeights(String name, Path dir) {
    try {
      return Files.readAllBytes(dir.resolve(PeftAdapter.WEIGHTS_FILE));
    } catch (IOException e) {
      throw new UncheckedIOException(dir + ": " + e, e);
    }
  }

  /** A release callback that records what it was given, in order. */
  static final class Released {
    final List<byte[]> values = new CopyOnWriteArrayList<>();

    void accept(byte[] v) {
      values.add(v);
    }

    /** The sizes of the released values, in release order. */
    List<Integer> sizes() {
      return values.stream().map(v -> v.length).toList();
    }
  }
}
