package io.loraspark.pipeline.ml;

import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.function.Function;
import java.util.stream.Stream;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * A trained adapter as the bytes of its PEFT directory ({@code adapter_config.json} and {@code
 * adapter_model.safetensors}), which is what crosses between JVMs: from the training task to the
 * driver, and broadcast from the driver to the scoring tasks. ND4J arrays live off-heap and do not
 * serialize; the PEFT files already describe every method exactly (DoRA's magnitude, VeRA's shared
 * projections, AdaLoRA's rank pattern, Delta-LoRA's rank-2r export), so they are the one wire
 * format, and {@link LoraWeights} is rebuilt from them by {@link PeftAdapter} on the side that
 * computes. Saving the model writes these bytes as they are.
 *
 * @param configJson the adapter_config.json text
 * @param weights the adapter_model.safetensors bytes
 */
record AdapterTensors(String configJson, byte[] weights) implements Serializable {

  /** Saves {@code w} as PEFT files (with {@code baseModel} as base_model_name_or_path). */
  static AdapterTensors of(LoraWeights w, String baseModel) {
    return inTempDir(
        dir -> {
          PeftAdapter.save(dir, w, baseModel);
          return read(dir);
        });
  }

  /** The PEFT files in {@code dir}, as they are (validated when they are turned into weights). */
  static AdapterTensors read(Path dir) {
    try {
      return new AdapterTensors(
          Files.readString(dir.resolve(PeftAdapter.CONFIG_FILE)),
          Files.readAllBytes(dir.resolve(PeftAdapter.WEIGHTS_FILE)));
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cannot read the adapter in " + dir + ": " + e.getMessage(), e);
    }
  }

  /** Writes the two files into {@code dir} (created if needed). */
  void writeTo(Path dir) {
    try {
      Files.createDirectories(dir);
      Files.writeString(dir.resolve(PeftAdapter.CONFIG_FILE), configJson);
      Files.write(dir.resolve(PeftAdapter.WEIGHTS_FILE), weights);
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cannot write the adapter to " + dir + ": " + e.getMessage(), e);
    }
  }

  /**
   * The adapter as weights of a model shaped like {@code model}, for methods whose branch does not
   * read the frozen weights.
   *
   * @throws IllegalArgumentException when the adapter does not fit the model, or its method needs
   *     the base weights (use {@link #toWeights(ModelWeights, DataType)})
   */
  LoraWeights toWeights(ModelConfig model, DataType dt) {
    return inTempDir(
        dir -> {
          writeTo(dir);
          return PeftAdapter.load(dir, model, dt);
        });
  }

  /** The adapter on the frozen {@code base}, for any method. */
  LoraWeights toWeights(ModelWeights base, DataType dt) {
    return inTempDir(
        dir -> {
          writeTo(dir);
          return PeftAdapter.load(dir, base, dt);
        });
  }

  private static <T> T inTempDir(Function<Path, T> body) {
    Path dir;
    try {
      dir = Files.createTempDirectory("lora-adapter");
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create a temporary directory: " + e.getMessage(), e);
    }
    try {
      return body.apply(dir);
    } finally {
      try (Stream<Path> files = Files.walk(dir)) {
        files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      } catch (IOException e) {
        // a leftover temporary directory is not worth failing the computation for
      }
    }
  }
}
