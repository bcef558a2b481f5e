package io.loraspark.train.lora;

import io.loraspark.train.io.AtomicFiles;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.safetensors.SafetensorsFile;
import io.loraspark.train.safetensors.SafetensorsWriter;
import io.loraspark.train.safetensors.TensorInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The Hugging Face PEFT LoRA adapter directory: {@code adapter_config.json} plus {@code
 * adapter_model.safetensors} holding {@code base_model.model.<module>.lora_A.weight} [r, in] and
 * {@code .lora_B.weight} [out, r] in F32 with {@code {"format":"pt"}} metadata, so PEFT, vLLM and
 * LoRAX load what this class saves. Saving then loading in FLOAT gives bit-identical A and B.
 *
 * <p>DoRA adds {@code base_model.model.<module>.lora_magnitude_vector} [out] and {@code "use_dora":
 * true}, the names PEFT's {@code get_peft_model_state_dict} (peft/utils/save_and_load.py) writes
 * after stripping the adapter name and the magnitude layer's {@code .weight}. LoRA-FA saves as
 * plain LoRA (its A is an ordinary, if untrained, A).
 */
public final class PeftAdapter {

  /** The config file inside an adapter directory. */
  public static final String CONFIG_FILE = PeftAdapterConfig.FILE;

  /** The weights file inside an adapter directory. */
  public static final String WEIGHTS_FILE = "adapter_model.safetensors";

  /** What PEFT's causal-LM wrapper puts in front of the base model's module names. */
  static final String PREFIX = "base_model.model.";

  /** The adapter name PEFT strips on save but some tools leave in ({@code .lora_A.default.}). */
  static final String DEFAULT_ADAPTER = "default";

  /** The file that tells a reader a Delta-LoRA directory is not a PEFT adapter. */
  public static final String DELTA_README = "README.md";

  private static final String DELTA_README_TEXT =
      """
      # Delta-LoRA adapter (lora-spark), not a PEFT adapter

      Delta-LoRA (Zi et al. 2023, arXiv:2309.02411) also moves the frozen weights, so this
      directory holds, per adapted module, `lora_A`, `lora_B` and the dense change of the base
      weight `delta_weight` (ΔW). PEFT has no format for it: `adapter_config.json` says
      `"peft_type": "DELTA_LORA"` so that PEFT refuses it instead of loading A and B alone.

      `lora-pipeline score --adapter` and `generate --adapter` use it as is. For any other tool,
      write the merged model W + ΔW + s·B·A as a plain Hugging Face checkpoint:

          lora-pipeline merge --model <base checkpoint> --adapter <this directory> --output <dir>
      """;

  private PeftAdapter() {}

  /**
   * Writes {@code w} as a PEFT adapter into {@code dir} (created if needed): the weights first,
   * then the config, each atomically (temp file + rename), replacing any earlier adapter there.
   * Gradients are not saved; DOUBLE weights are rounded to F32.
   *
   * @param baseModelNameOrPath written as base_model_name_or_path (a hub id or a path); may be null
   * @throws java.io.UncheckedIOException naming the path if a directory or file cannot be written
   */
  public static void save(Path dir, LoraWeights w, String baseModelNameOrPath) {
    AtomicFiles.createDirectories(dir);
    Map<String, SafetensorsWriter.Tensor> tensors = new LinkedHashMap<>();
    for (LoraWeights.Module m : w.modules()) {
      INDArray[] factors = w.variant().exportFactors(m);
      tensors.put(key(m.name(), "lora_A"), f32(factors[0]));
      tensors.put(key(m.name(), "lora_B"), f32(factors[1]));
      if (m.magnitude() != null) {
        tensors.put(magnitudeKey(m.name()), f32(m.magnitude()));
      }
      if (m.delta() != null) {
        tensors.put(deltaKey(m.name()), f32(m.delta()));
      }
    }
    SafetensorsWriter.write(dir.resolve(WEIGHTS_FILE), tensors, Map.of("format", "pt"));
    if (w.config().method() == LoraMethod.DELTA_LORA) {
      AtomicFiles.writeString(dir.resolve(DELTA_README), DELTA_README_TEXT);
    }
    AtomicFiles.writeString(
        dir.resolve(CONFIG_FILE),
        PeftAdapterConfig.render(w.variant().exportConfig(w.config()), baseModelNameOrPath));
  }

  /**
   * Reads the adapter in {@code dir} for a base model shaped like {@code model}.
   *
   * <p>The config is validated strictly (see {@link PeftAdapterConfig}); the weights file must hold
   * exactly one lora_A and one lora_B for each targeted projection of each of the model's layers
   * (keys with or without the {@code .default} adapter name), shaped [r, in] and [out, r] for the
   * model, F32, F16 or BF16 (widened exactly), and finite.
   *
   * @param dt the element type of the returned A and B
   * @throws IllegalArgumentException with a one-line message naming the file and the key or tensor
   *     and what would be valid
   * @throws java.io.UncheckedIOException naming the file if it cannot be read
   */
  public static LoraWeights load(Path dir, ModelConfig model, DataType dt) {
    LoraConfig config = readConfig(dir);
    if (config.method().variant().needsBase()) {
      throw new IllegalArgumentException(
          dir.resolve(CONFIG_FILE)
              + " describes a "
              + config.method().key()
              + " adapter, whose branch needs the frozen base weights; load it with the base"
              + " model's ModelWeights");
    }
    return fill(dir, LoraWeights.zeros(model, config, dt));
  }

  /**
   * {@link #load(Path, ModelConfig, DataType)} for any method, including those whose branch needs
   * the frozen weights (DoRA), which keep references to {@code base}'s arrays.
   */
  public static LoraWeights load(Path dir, ModelWeights base, DataType dt) {
    return fill(dir, LoraWeights.zeros(base, readConfig(dir), dt));
  }

  /**
   * Reads the adapter in {@code dir} into {@code target} (e.g. to resume training), which must save
   * as the adapter in {@code dir} ({@link LoraVariant#exportConfig}): a LoRA-FA target reads a
   * plain LoRA save, a PiSSA target its converted rank-2r save.
   *
   * @throws IllegalArgumentException naming the file when the saved adapter has another shape or
   *     method state, or is malformed (see {@link #load(Path, ModelConfig, DataType)})
   */
  public static void loadInto(Path dir, LoraWeights target) {
    LoraConfig saved = readConfig(dir);
    LoraConfig want = target.variant().exportConfig(target.config());
    if (!saved.equals(want)) {
      throw new IllegalArgumentException(
          dir.resolve(CONFIG_FILE)
              + " describes "
              + saved
              + " but the "
              + target.config().method().key()
              + " adapter saves as "
              + want);
    }
    fill(dir, target);
  }

  private static LoraConfig readConfig(Path dir) {
    if (!Files.isDirectory(dir)) {
      throw new IllegalArgumentException(
          dir
              + " is not a directory; expected a PEFT adapter directory with "
              + CONFIG_FILE
              + " and "
              + WEIGHTS_FILE);
    }
    return PeftAdapterConfig.read(dir.resolve(CONFIG_FILE));
  }

  /** Reads every tensor of the weights file into {@code w}'s arrays and returns {@code w}. */
  private static LoraWeights fill(Path dir, LoraWeights w) {
    LoraConfig config = w.variant().exportConfig(w.config());
    Path file = dir.resolve(WEIGHTS_FILE);
    if (!Files.isRegularFile(file)) {
      String hint =
          Files.exists(dir.resolve("adapter_model.bin"))
              ? " (adapter_model.bin is a pickle and is never loaded; re-save with"
                  + " safe_serialization=True)"
              : "";
      throw new IllegalArgumentException(
          file + " is missing; expected the adapter's weights in safetensors format" + hint);
    }
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      Map<String, String> stored = storedNames(f, w);
      for (LoraWeights.Module m : w.modules()) {
        INDArray[] factors = w.variant().exportFactors(m);
        read(f, stored.get(key(m.name(), "lora_A")), factors[0], config);
        read(f, stored.get(key(m.name(), "lora_B")), factors[1], config);
        w.variant().importFactors(m, factors);
        if (m.magnitude() != null) {
          read(f, stored.get(magnitudeKey(m.name())), m.magnitude(), config);
        }
        if (m.delta() != null) {
          read(f, stored.get(deltaKey(m.name())), m.delta(), config);
        }
      }
    }
    return w;
  }

  /** The canonical key of one factor: {@code base_model.model.<module>.<factor>.weight}. */
  static String key(String module, String factor) {
    return PREFIX + module + "." + factor + ".weight";
  }

  /**
   * The DoRA magnitude key of a module: {@code base_model.model.<module>.lora_magnitude_vector}.
   */
  static String magnitudeKey(String module) {
    return PREFIX + module + "." + DoraVariant.MAGNITUDE;
  }

  /** Delta-LoRA's dense ΔW key of a module: {@code base_model.model.<module>.delta_weight}. */
  static String deltaKey(String module) {
    return PREFIX + module + "." + DeltaLoraVariant.DELTA;
  }

  /**
   * Maps each expected canonical key to the name it is stored under, refusing unexpected, duplicate
   * and missing tensors.
   */
  private static Map<String, String> storedNames(SafetensorsFile f, LoraWeights w) {
    Map<String, String> stored = new LinkedHashMap<>();
    for (LoraWeights.Module m : w.modules()) {
      stored.put(key(m.name(), "lora_A"), null);
      stored.put(key(m.name(), "lora_B"), null);
      if (m.magnitude() != null) {
        stored.put(magnitudeKey(m.name()), null);
      }
      if (m.delta() != null) {
        stored.put(deltaKey(m.name()), null);
      }
    }
    String magnitudeDefault = "." + DoraVariant.MAGNITUDE + "." + DEFAULT_ADAPTER;
    for (String name : f.names()) {
      String canonical = name.replace(".lora_A." + DEFAULT_ADAPTER + ".", ".lora_A.");
      canonical = canonical.replace(".lora_B." + DEFAULT_ADAPTER + ".", ".lora_B.");
      if (canonical.endsWith(magnitudeDefault)) {
        canonical = canonical.substring(0, canonical.length() - DEFAULT_ADAPTER.length() - 1);
      }
      if (!stored.containsKey(canonical)) {
        throw new IllegalArgumentException(
            f.path() + ": unexpected tensor '" + name + "'; " + expected(w));
      }
      String earlier = stored.put(canonical, name);
      if (earlier != null) {
        throw new IllegalArgumentException(
            f.path()
                + ": tensors '"
                + earlier
                + "' and '"
                + name
                + "' are the same weight;"
                + " keep only '"
                + canonical
                + "'");
      }
    }
    for (Map.Entry<String, String> e : stored.entrySet()) {
      if (e.getValue() == null) {
        throw new IllegalArgumentException(
            f.path() + ": tensor '" + e.getKey() + "' is missing; " + expected(w));
      }
    }
    return stored;
  }

  private static String expected(LoraWeights w) {
    return "the adapter's target_modules "
        + w.config().targets().stream().map(PeftAdapterConfig::moduleName).toList()
        + " on a model with "
        + w.model().numLayers()
        + " layers need exactly "
        + PREFIX
        + "model.layers.<0.."
        + (w.model().numLayers() - 1)
        + ">.<module>.lora_{A,B}.weight"
        + (w.variant().hasMagnitude() ? " and .lora_magnitude_vector" : "")
        + (w.config().method() == LoraMethod.DELTA_LORA ? " and ." + DeltaLoraVariant.DELTA : "");
  }

  /** Reads tensor {@code name} into {@code target}, checking shape and finiteness. */
  private static void read(SafetensorsFile f, String name, INDArray target, LoraConfig config) {
    TensorInfo info = f.info(name);
    long[] want = target.shape();
    if (!Arrays.equals(info.shape(), want)) {
      throw new IllegalArgumentException(
          f.path()
              + ": tensor '"
              + name
              + "' has shape "
              + Arrays.toString(info.shape())
              + " but "
              + CONFIG_FILE
              + " r="
              + config.rank()
              + " and the model's config imply "
              + Arrays.toString(want));
    }
    float[] v = f.readFloats(name);
    for (int i = 0; i < v.length; i++) {
      if (!Float.isFinite(v[i])) {
        throw new IllegalArgumentException(
            f.path()
                + ": tensor '"
                + name
                + "' holds "
                + v[i]
                + " at flat index "
                + i
                + "; adapter weights must be finite (did training diverge?)");
      }
    }
    target.assign(Nd4j.create(v, want, 'c').castTo(target.dataType()));
  }

  /** An array's values as an F32 tensor of the same shape, in C order (copied). */
  static SafetensorsWriter.Tensor f32(INDArray a) {
    INDArray c = a.castTo(DataType.FLOAT).dup('c');
    float[] data = c.data().asFloat();
    if (data.length != c.length()) {
      data = Arrays.copyOf(data, (int) c.length());
    }
    return SafetensorsWriter.Tensor.f32(a.shape(), data);
  }
}
