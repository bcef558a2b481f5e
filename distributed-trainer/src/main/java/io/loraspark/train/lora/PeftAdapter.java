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
 * plain LoRA (its A is an ordinary, if untrained, A). VeRA ({@code "peft_type": "VERA"}) saves
 * {@code base_model.model.<module>.vera_lambda_b} [out], {@code .vera_lambda_d} [r] and the shared
 * {@code base_model.vera_A} [r, in_max], {@code base_model.vera_B} [out_max, r]; AdaLoRA ({@code
 * "peft_type": "ADALORA"}) {@code .lora_A} [k, in], {@code .lora_E} [k, 1], {@code .lora_B} [out,
 * k] with each module's k kept ranks of its {@code rank_pattern}. Each method's tensors come from
 * its {@link LoraVariant#peftTensors}.
 */
public final class PeftAdapter {

  /** The config file inside an adapter directory. */
  public static final String CONFIG_FILE = PeftAdapterConfig.FILE;

  /** The weights file inside an adapter directory. */
  public static final String WEIGHTS_FILE = "adapter_model.safetensors";

  /** What PEFT's causal-LM wrapper puts in front of the base model's module names. */
  static final String PREFIX = "base_model.model.";

  /** What PEFT puts in front of tensors shared by the whole adapter (VeRA's vera_A, vera_B). */
  static final String SHARED_PREFIX = "base_model.";

  /** The adapter name PEFT strips on save but some tools leave in ({@code .lora_A.default.}). */
  static final String DEFAULT_ADAPTER = "default";

  /**
   * The file that tells a reader a Delta-LoRA directory of an earlier version (dense ΔW) is not a
   * PEFT adapter.
   */
  public static final String DELTA_README = "README.md";

  /**
   * Beside a Delta-LoRA adapter exported as a rank-2r PEFT LoRA: the method, λ and K that trained
   * it (PEFT readers never open it).
   */
  public static final String PROVENANCE_FILE = "lora_spark_method.json";

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
   * An adapter that does not fit the base model it is loaded for in a way a different base model
   * would explain: a tensor shaped for other projection widths, tensors for layers the model lacks
   * or layers it has that the adapter lacks. Config errors are plain {@link
   * IllegalArgumentException}s.
   */
  public static final class ModelMismatchException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    ModelMismatchException(String message) {
      super(message);
    }
  }

  /**
   * Writes {@code w} as a PEFT adapter into {@code dir} (created if needed): the weights first,
   * then the config, each atomically (temp file + rename), replacing any earlier adapter there.
   * Gradients are not saved; DOUBLE weights are rounded to F32.
   *
   * @param baseModelNameOrPath written as base_model_name_or_path (a hub id or a path); may be null
   * @throws java.io.UncheckedIOException naming the path if a directory or file cannot be written
   */
  public static void save(Path dir, LoraWeights w, String baseModelNameOrPath) {
    write(dir, w, false);
    DeltaLoraParams delta = w.config().deltaLora();
    if (delta != null && delta.dense()) {
      AtomicFiles.writeString(dir.resolve(DELTA_README), DELTA_README_TEXT);
    } else if (delta != null) {
      AtomicFiles.writeString(dir.resolve(PROVENANCE_FILE), provenance(w.config()));
    }
    AtomicFiles.writeString(
        dir.resolve(CONFIG_FILE), PeftAdapterConfig.render(w, baseModelNameOrPath));
  }

  /**
   * Writes {@code w}'s exact training state into {@code dir}, as {@link #loadInto} reads it back
   * bit for bit: the PEFT adapter of {@link #save} for every method whose export reads back
   * exactly, Delta-LoRA's own state ({@link LoraVariant#stateConfig}) otherwise.
   */
  public static void saveState(Path dir, LoraWeights w) {
    write(dir, w, true);
    AtomicFiles.writeString(dir.resolve(CONFIG_FILE), PeftAdapterConfig.renderState(w));
  }

  /**
   * Whether a file with config {@code c} holds {@link #saveState}'s training state (a Delta-LoRA
   * checkpoint's): its config is not what its method exports as.
   */
  private static boolean isState(LoraConfig c) {
    return !c.method().variant().exportConfig(c).equals(c);
  }

  /** The weights file of {@code w}'s export or state. */
  private static void write(Path dir, LoraWeights w, boolean state) {
    AtomicFiles.createDirectories(dir);
    Map<String, SafetensorsWriter.Tensor> tensors = new LinkedHashMap<>();
    for (LoraWeights.Module m : w.modules()) {
      for (Map.Entry<String, INDArray> t : tensors(w, m, state).entrySet()) {
        tensors.put(PREFIX + m.name() + "." + t.getKey(), f32(t.getValue()));
      }
    }
    for (Map.Entry<String, INDArray> t : w.shared().entrySet()) {
      tensors.put(SHARED_PREFIX + t.getKey(), f32(t.getValue()));
    }
    SafetensorsWriter.write(dir.resolve(WEIGHTS_FILE), tensors, Map.of("format", "pt"));
  }

  private static Map<String, INDArray> tensors(LoraWeights w, LoraWeights.Module m, boolean state) {
    return state ? w.variant().stateTensors(w, m) : w.variant().peftTensors(w, m);
  }

  /** {@value #PROVENANCE_FILE}: what trained a Delta-LoRA adapter exported as plain LoRA. */
  private static String provenance(LoraConfig c) {
    DeltaLoraParams d = c.deltaLora();
    com.fasterxml.jackson.databind.ObjectMapper json =
        new com.fasterxml.jackson.databind.ObjectMapper();
    com.fasterxml.jackson.databind.node.ObjectNode n = json.createObjectNode();
    n.put("method", c.method().key());
    n.put("paper", "arXiv:2309.02411");
    n.put("update_ratio", d.updateRatio());
    if (d.startStep() == DeltaLoraParams.AUTO) {
      n.putNull("start_step");
    } else {
      n.put("start_step", d.startStep());
    }
    n.put("rank", c.rank());
    n.put("lora_alpha", c.alpha());
    n.put("use_rslora", c.rsLora());
    n.put(
        "export",
        "rank-2r LoRA: lora_A = [A_T; A_K], lora_B = [(1 + update_ratio) B_T, -update_ratio B_K],"
            + " lora_alpha so that alpha / r is the trained scaling");
    try {
      return json.writerWithDefaultPrettyPrinter().writeValueAsString(n) + "\n";
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException("cannot render " + PROVENANCE_FILE + ": " + e, e);
    }
  }

  /**
   * Reads the adapter in {@code dir} for a base model shaped like {@code model}.
   *
   * <p>The config is validated strictly (see {@link PeftAdapterConfig}); the weights file must hold
   * exactly one lora_A and one lora_B for each module the config selects on the model (every
   * targeted projection of every layer, unless layers_to_transform, exclude_modules or a regex
   * target_modules narrow it; keys with or without the {@code .default} adapter name), shaped [r_m,
   * in] and [out, r_m] for the model and the module's rank (rank_pattern), F32, F16 or BF16
   * (widened exactly), and finite.
   *
   * @param dt the element type of the returned A and B
   * @throws ModelMismatchException when the adapter was made for a differently shaped model
   *     (projection widths, layer count)
   * @throws IllegalArgumentException with a one-line message naming the file and the key or tensor
   *     and what would be valid
   * @throws java.io.UncheckedIOException naming the file if it cannot be read
   */
  public static LoraWeights load(Path dir, ModelConfig model, DataType dt) {
    LoraConfig config = readConfig(dir);
    PeftModuleKeys.checkModel(dir.resolve(CONFIG_FILE), config, model);
    if (config.method().variant().needsBase()) {
      throw new IllegalArgumentException(
          dir.resolve(CONFIG_FILE)
              + " describes a "
              + config.method().key()
              + " adapter, whose branch needs the frozen base weights; load it with the base"
              + " model's ModelWeights");
    }
    return fill(dir, LoraWeights.zeros(model, config, dt), isState(config));
  }

  /**
   * {@link #load(Path, ModelConfig, DataType)} for any method, including those whose branch needs
   * the frozen weights (DoRA), which keep references to {@code base}'s arrays.
   */
  public static LoraWeights load(Path dir, ModelWeights base, DataType dt) {
    LoraConfig config = readConfig(dir);
    PeftModuleKeys.checkModel(dir.resolve(CONFIG_FILE), config, base.config());
    return fill(dir, LoraWeights.zeros(base, config, dt), isState(config));
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
    LoraConfig want = target.variant().stateConfig(target.config());
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
    fill(dir, target, true);
  }

  /**
   * The validated {@code adapter_config.json} of the adapter in {@code dir}, as the engine's config
   * (method included).
   *
   * @throws IllegalArgumentException naming the file and key when it is missing or invalid
   */
  public static LoraConfig readConfig(Path dir) {
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

  /**
   * Reads every tensor of the weights file into {@code w}'s arrays and returns {@code w}.
   *
   * @param state whether the file holds {@link #saveState}'s training state, else an export
   */
  private static LoraWeights fill(Path dir, LoraWeights w, boolean state) {
    LoraConfig config =
        state ? w.variant().stateConfig(w.config()) : w.variant().exportConfig(w.config());
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
    if (w.allocator() != null) {
      PeftAdapterConfig.readRankState(dir.resolve(CONFIG_FILE), w);
    }
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      Map<String, String> stored = storedNames(f, w, state);
      for (LoraWeights.Module m : w.modules()) {
        Map<String, INDArray> tensors = tensors(w, m, state);
        for (Map.Entry<String, INDArray> t : tensors.entrySet()) {
          read(f, stored.get(PREFIX + m.name() + "." + t.getKey()), t.getValue(), config, m);
        }
        w.variant().importTensors(w, m, tensors);
      }
      for (Map.Entry<String, INDArray> t : w.shared().entrySet()) {
        read(f, stored.get(SHARED_PREFIX + t.getKey()), t.getValue(), config, null);
      }
    }
    return w;
  }

  /**
   * Maps each expected canonical key to the name it is stored under, refusing unexpected, duplicate
   * and missing tensors. A stored name may carry PEFT's adapter name ({@code .default}) after the
   * tensor's name, as some tools leave it.
   */
  private static Map<String, String> storedNames(SafetensorsFile f, LoraWeights w, boolean state) {
    Map<String, String> stored = new LinkedHashMap<>();
    for (LoraWeights.Module m : w.modules()) {
      for (String name : tensors(w, m, state).keySet()) {
        stored.put(PREFIX + m.name() + "." + name, null);
      }
    }
    for (String name : w.shared().keySet()) {
      stored.put(SHARED_PREFIX + name, null);
    }
    String inner = "." + DEFAULT_ADAPTER + ".";
    String last = "." + DEFAULT_ADAPTER;
    int storedLayers = 0; // 1 + the highest layer index among the stored tensors
    for (String name : f.names()) {
      storedLayers = Math.max(storedLayers, layerOf(name) + 1);
    }
    for (String name : f.names()) {
      String canonical = name.replace(inner, ".");
      if (canonical.endsWith(last)) {
        canonical = canonical.substring(0, canonical.length() - last.length());
      }
      if (!stored.containsKey(canonical)) {
        String msg = f.path() + ": unexpected tensor '" + name + "'; " + expected(w);
        throw layerOf(name) >= w.model().numLayers()
            ? new ModelMismatchException(msg)
            : new IllegalArgumentException(msg);
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
        String msg = f.path() + ": tensor '" + e.getKey() + "' is missing; " + expected(w);
        throw layerOf(e.getKey()) >= storedLayers // the file stops before this layer
            ? new ModelMismatchException(msg)
            : new IllegalArgumentException(msg);
      }
    }
    return stored;
  }

  /** The layer index in a tensor name ({@code ...model.layers.<i>....}), or -1 when none. */
  private static int layerOf(String name) {
    java.util.regex.Matcher m = LAYER.matcher(name);
    return m.find() ? Integer.parseInt(m.group(1)) : -1;
  }

  private static final java.util.regex.Pattern LAYER =
      java.util.regex.Pattern.compile("\\.layers\\.(\\d{1,9})\\.");

  private static String expected(LoraWeights w) {
    LoraWeights.Module first = w.modules().iterator().next();
    String names = String.join(",", w.variant().peftTensors(w, first).keySet());
    ModuleSelection s = w.config().selection();
    String targets =
        s.targetRegex() != null
            ? "\"" + s.targetRegex() + "\""
            : w.config().targets().stream().map(PeftAdapterConfig::moduleName).toList().toString();
    boolean everyLayer = w.modules().size() == w.model().numLayers() * w.config().targets().size();
    return "the adapter's target_modules "
        + targets
        + " on a model with "
        + w.model().numLayers()
        + " layers need exactly "
        + PREFIX
        + "model.layers.<0.."
        + (w.model().numLayers() - 1)
        + ">.<module>.{"
        + names
        + "}"
        + (everyLayer ? "" : " for its " + w.modules().size() + " selected modules")
        + (w.shared().isEmpty() ? "" : " and " + SHARED_PREFIX + w.shared().keySet());
  }

  /**
   * Reads tensor {@code name} into {@code target}, checking shape and finiteness. A shape that
   * differs only in the rank is the config's error; one that differs in a projection width is a
   * {@link ModelMismatchException}.
   *
   * @param m the module the tensor belongs to, or null for a shared tensor
   */
  private static void read(
      SafetensorsFile f, String name, INDArray target, LoraConfig config, LoraWeights.Module m) {
    TensorInfo info = f.info(name);
    long[] want = target.shape();
    if (!Arrays.equals(info.shape(), want)) {
      int r = m == null ? config.rank() : config.rank(m.name());
      String msg =
          f.path()
              + ": tensor '"
              + name
              + "' has shape "
              + Arrays.toString(info.shape())
              + " but "
              + CONFIG_FILE
              + " r="
              + r
              + (r == config.rank() ? "" : " (rank_pattern)")
              + " and the model's config imply "
              + Arrays.toString(want);
      throw onlyRankDiffers(info.shape(), want, r)
          ? new IllegalArgumentException(msg)
          : new ModelMismatchException(msg);
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
    if (v.length > 0) { // an AdaLoRA module pruned to rank 0 saves empty tensors
      target.assign(Nd4j.create(v, want, 'c').castTo(target.dataType()));
    }
  }

  /**
   * Whether {@code got} differs from {@code want} only in the dimensions of size {@code r} (A's
   * rows, B's columns), which the config fixes, so that another base model would not fit either.
   */
  private static boolean onlyRankDiffers(long[] got, long[] want, int r) {
    if (got.length != want.length) {
      return false;
    }
    for (int i = 0; i < got.length; i++) {
      if (got[i] != want[i] && want[i] != r) {
        return false;
      }
    }
    return true;
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
