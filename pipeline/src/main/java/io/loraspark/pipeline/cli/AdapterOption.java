package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.loraspark.train.lora.AdapterChain;
import io.loraspark.train.lora.ChainedAdapters;
import io.loraspark.train.lora.FusedLora;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.ModelWeights;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The {@code --adapter DIR} option shared by {@code score}, {@code generate} and {@code merge}: a
 * PEFT LoRA adapter directory loaded in F32 against the base model's config, so a wrong layer
 * count, projection shape or target module is refused before any work, naming the file and tensor.
 * A child adapter ({@link AdapterChain}) runs on its whole recorded parent chain.
 */
final class AdapterOption {
  private AdapterOption() {}

  /**
   * The adapters to run the model with: none when {@code adapterDir} is null, else the adapter in
   * {@code adapterDir} on every row, without dropout.
   *
   * @param adapterDir the PEFT adapter directory, or null for the bare model
   * @param modelDir the base checkpoint directory, named in error messages
   * @param model the base model, which fixes the expected tensor shapes (and whose frozen weights a
   *     DoRA adapter's branch reads)
   * @throws IllegalArgumentException with one line naming the file and tensor or key if the adapter
   *     is missing, malformed or made for a differently shaped model
   */
  static Adapters adapters(Path adapterDir, Path modelDir, ModelWeights model) {
    if (adapterDir == null) {
      return Adapters.NONE;
    }
    LoraWeights adapter = load(adapterDir, modelDir, model);
    AdapterChain chain = AdapterChain.of(adapterDir.toString());
    return FusedLora.inference(adapter, ChainedAdapters.frozenChain(chain, model, DataType.FLOAT));
  }

  /**
   * The adapter in {@code adapterDir} as decoding runs it: {@link #load} for a root adapter, a
   * child with its additive parent chain as one exact LoRA ({@link ChainedAdapters#forDecoding}).
   *
   * @throws IllegalArgumentException (one line) for a chain with a DoRA or unconverted PiSSA node,
   *     which decoding does not apply
   */
  static LoraWeights loadForDecoding(Path adapterDir, Path modelDir, ModelWeights model) {
    AdapterChain chain = AdapterChain.of(adapterDir.toString());
    return chain.depth() == 0
        ? load(adapterDir, modelDir, model)
        : ChainedAdapters.forDecoding(adapterDir, chain, model);
  }

  /**
   * Loads the adapter in {@code adapterDir} (F32) for {@code model}; see {@link #adapters}. When
   * the adapter does not fit the model's shapes or layer count ({@link
   * PeftAdapter.ModelMismatchException}) and its {@code base_model_name_or_path} names another
   * model, the message says so; any other error (a config key, a malformed tensor) is reported as
   * it is.
   */
  static LoraWeights load(Path adapterDir, Path modelDir, ModelWeights model) {
    try {
      return PeftAdapter.load(adapterDir, model, DataType.FLOAT);
    } catch (PeftAdapter.ModelMismatchException e) {
      String base = baseModelOf(adapterDir);
      if (base == null || refersTo(base, modelDir)) {
        throw e;
      }
      throw new IllegalArgumentException(
          e.getMessage()
              + " (the adapter was saved for base_model_name_or_path '"
              + base
              + "', not "
              + modelDir
              + ")",
          e);
    }
  }

  /** The adapter's base_model_name_or_path, or null when absent or unreadable. */
  static String baseModelOf(Path adapterDir) {
    Path file = adapterDir.resolve(PeftAdapter.CONFIG_FILE);
    try {
      JsonNode root = ScoreInput.STRICT.readTree(file.toFile());
      JsonNode base = root == null ? null : root.get("base_model_name_or_path");
      return base != null && base.isTextual() ? base.textValue() : null;
    } catch (IOException e) {
      return null; // the config error itself is what PeftAdapter.load reported
    }
  }

  /** Whether {@code name} is a path to {@code modelDir} (a hub id never is). */
  private static boolean refersTo(String name, Path modelDir) {
    try {
      Path p = Path.of(name);
      return Files.exists(p) && Files.isSameFile(p, modelDir);
    } catch (IOException | InvalidPathException e) {
      return false; // not a usable path: a hub id or another machine's path
    }
  }
}
