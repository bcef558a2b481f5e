package io.loraspark.pipeline.sweep;

import static io.loraspark.pipeline.sweep.ConfigNodes.bool;
import static io.loraspark.pipeline.sweep.ConfigNodes.checkKeys;
import static io.loraspark.pipeline.sweep.ConfigNodes.fields;
import static io.loraspark.pipeline.sweep.ConfigNodes.integer;
import static io.loraspark.pipeline.sweep.ConfigNodes.required;
import static io.loraspark.pipeline.sweep.ConfigNodes.text;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.loraspark.train.model.precision.Precision;
import io.loraspark.train.model.quant.BaseQuant;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A sweep, as read from YAML: where the base model, data and run directory are, the default adapter
 * settings, the grid (setting → values; the sweep is their cross product) and/or an explicit list
 * of adapters, how many adapters one Spark task trains fused, and the pruning rule.
 *
 * <p>Validated strictly: an unknown key anywhere is an error that lists the valid keys; values are
 * read into their settings' types and checked against their ranges here ({@link SettingValues});
 * what depends on several settings (method, replicas) is checked when the adapters are built
 * ({@link SweepPlan}). YAML is parsed as data only (Jackson's SnakeYAML-backed parser builds no
 * objects from tags), so a config can never run code.
 *
 * @param defaults the settings every adapter starts from (typed and range-checked when read)
 * @param grid the grid's keys in the file's order, each with its values
 * @param adapterSettings explicit adapters, each settings over {@code defaults}
 * @param spark extra Spark settings ({@code spark.*} keys) applied to the session
 * @param preprocess what {@code run} preprocesses into the run directory first; null for none
 * @param baseQuant how every executor stores the frozen base's projection weights
 * @param recomputeActivations whether tasks recompute each layer's activations during backward
 * @param precision the frozen projections' GEMM precision, resolved on each executor
 * @param stages a staged sweep's stages ({@link Stage}), each its own sweep; empty for a plain one
 */
public record SweepConfig(
    Path source,
    String model,
    String data,
    String output,
    String runId,
    String master,
    SettingValues defaults,
    List<SettingValues.Axis> grid,
    List<SettingValues> adapterSettings,
    int adaptersPerTask,
    Pruning pruning,
    int checkpointEvery,
    Map<String, String> spark,
    PreprocessSettings preprocess,
    BaseQuant baseQuant,
    boolean recomputeActivations,
    Precision precision,
    List<Stage> stages) {

  /**
   * Successive halving: every adapter trains to {@code minSteps}, the best 1/eta (by eval loss)
   * continue to {@code minSteps·eta}, and so on until the full step count. {@code none} trains
   * every adapter to the end.
   */
  public record Pruning(String strategy, int eta, int minSteps) {
    public static final Pruning NONE = new Pruning("none", 2, 0);

    public boolean enabled() {
      return strategy.equals("successive_halving");
    }
  }

  /** Top-level keys ({@link ConfigKeys#TOP}). */
  public static final Set<String> KEYS = ConfigKeys.names(ConfigKeys.TOP);

  /** Keys of the {@code preprocess} section ({@link ConfigKeys#PREPROCESS}). */
  public static final Set<String> PREPROCESS_KEYS = ConfigKeys.names(ConfigKeys.PREPROCESS);

  /** Adapter settings allowed in {@code defaults}, {@code grid} and {@code adapters}. */
  public static final Set<String> ADAPTER_KEYS = ConfigKeys.names(ConfigKeys.ADAPTER);

  static final Set<String> PRUNING_KEYS = ConfigKeys.names(ConfigKeys.PRUNING);

  private static final ObjectMapper YAML =
      new ObjectMapper(new YAMLFactory()).enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

  /**
   * Reads and validates a sweep file. Relative model/data/output paths resolve against the current
   * directory (as on the command line), not the file.
   *
   * @throws IllegalArgumentException naming the file and key for anything invalid
   */
  public static SweepConfig read(Path file) {
    JsonNode root;
    try {
      root = YAML.readTree(file.toFile());
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(
          file + ": not valid YAML (" + ConfigNodes.oneLine(e.getOriginalMessage()) + ")");
    } catch (IOException e) {
      if (!Files.exists(file)) {
        throw new IllegalArgumentException(file + ": no such sweep config file");
      }
      throw new UncheckedIOException("cannot read " + file, e);
    }
    return parse(file, root);
  }

  static SweepConfig parse(Path file, JsonNode root) {
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException(file + ": a sweep config must be a YAML mapping");
    }
    checkKeys(file, "", root, KEYS);
    SettingValues defaults = SettingValues.read(file, "defaults", root.get("defaults"));
    List<SettingValues.Axis> grid = SettingValues.readGrid(file, root.get("grid"));
    List<SettingValues> adapters = adapters(file, root.get("adapters"));
    Pruning pruning = pruning(file, root.get("pruning"));
    Map<String, String> spark = spark(file, root.get("spark"));
    PreprocessSettings preprocess = PreprocessSettings.read(file, root.get("preprocess"));
    int perTask = integer(file, root, "adapters_per_task", ConfigKeys.DEFAULT_ADAPTERS_PER_TASK);
    if (perTask < 1 || perTask > 64) {
      throw new IllegalArgumentException(
          file + ": adapters_per_task must be in [1, 64] but was " + perTask);
    }
    int checkpointEvery =
        integer(file, root, "checkpoint_every", ConfigKeys.DEFAULT_CHECKPOINT_EVERY);
    if (checkpointEvery < 0) {
      throw new IllegalArgumentException(
          file + ": checkpoint_every must be >= 0 but was " + checkpointEvery);
    }
    String quant = text(file, root, "base_quant", BaseQuant.NONE.key());
    BaseQuant baseQuant = inFile(file, () -> BaseQuant.parse(quant));
    boolean recompute = bool(file, root, "recompute_activations", false);
    Precision precision =
        inFile(file, () -> Precision.parse(text(file, root, "precision", Precision.DEFAULT.key())));
    List<Stage> stages = Stage.parse(file, root);
    return new SweepConfig(
        file,
        required(file, root, "model"),
        preprocess == null && stages.isEmpty()
            ? required(file, root, "data")
            : text(file, root, "data", null),
        text(file, root, "output", null),
        text(file, root, "run_id", null),
        text(file, root, "master", null),
        defaults,
        grid,
        adapters,
        perTask,
        pruning,
        checkpointEvery,
        spark,
        preprocess,
        baseQuant,
        recompute,
        precision,
        stages);
  }

  /** {@code parse}'s result, its IllegalArgumentException prefixed with the file. */
  private static <T> T inFile(Path file, java.util.function.Supplier<T> parse) {
    try {
      return parse.get();
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
    }
  }

  /** The explicit adapters, each a mapping of settings. */
  private static List<SettingValues> adapters(Path file, JsonNode a) {
    List<SettingValues> adapters = new ArrayList<>();
    if (a == null || a.isNull()) {
      return adapters;
    }
    if (!a.isArray()) {
      throw new IllegalArgumentException(file + ": adapters must be a list of setting maps");
    }
    for (int i = 0; i < a.size(); i++) {
      adapters.add(SettingValues.read(file, "adapters[" + i + "]", a.get(i)));
    }
    return adapters;
  }

  /** The pruning rule: absent (none), a strategy name, or a mapping of {@link #PRUNING_KEYS}. */
  private static Pruning pruning(Path file, JsonNode p) {
    if (p == null || p.isNull()) {
      return Pruning.NONE;
    }
    if (p.isTextual()) {
      return pruning(file, p.asText(), 3, 0);
    }
    if (!p.isObject()) {
      throw new IllegalArgumentException(
          file
              + ": pruning must be none, successive_halving or a mapping of "
              + String.join(", ", PRUNING_KEYS)
              + " but was "
              + p);
    }
    checkKeys(file, "pruning.", p, PRUNING_KEYS);
    return pruning(
        file,
        text(file, p, "strategy", "successive_halving"),
        integer(file, p, "eta", 3),
        integer(file, p, "min_steps", 0));
  }

  /** The extra Spark settings: {@code spark.*} keys with scalar values. */
  private static Map<String, String> spark(Path file, JsonNode s) {
    Map<String, String> spark = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e :
        fields(file, s, "spark must map spark.* keys to values", "spark.", null)) {
      if (!e.getKey().startsWith("spark.") || e.getValue().isContainerNode()) {
        throw new IllegalArgumentException(
            file + ": spark." + e.getKey() + " must be a spark.* key with a scalar value");
      }
      spark.put(e.getKey(), e.getValue().asText());
    }
    return spark;
  }

  /** A copy reading its training data from {@code dataUri} (the run's own shards). */
  public SweepConfig withData(String dataUri) {
    return new SweepConfig(
        source,
        model,
        dataUri,
        output,
        runId,
        master,
        defaults,
        grid,
        adapterSettings,
        adaptersPerTask,
        pruning,
        checkpointEvery,
        spark,
        preprocess,
        baseQuant,
        recomputeActivations,
        precision,
        stages);
  }

  /** A copy with the command line's overrides (null keeps the file's value). */
  public SweepConfig withOverrides(String output, String runId) {
    return new SweepConfig(
        source,
        model,
        data,
        output != null ? output : this.output,
        runId != null ? runId : this.runId,
        master,
        defaults,
        grid,
        adapterSettings,
        adaptersPerTask,
        pruning,
        checkpointEvery,
        spark,
        preprocess,
        baseQuant,
        recomputeActivations,
        precision,
        stages);
  }

  private static Pruning pruning(Path file, String strategy, int eta, int minSteps) {
    if (!Set.of("none", "successive_halving").contains(strategy)) {
      throw new IllegalArgumentException(
          file
              + ": pruning.strategy must be none or successive_halving but was '"
              + strategy
              + "'");
    }
    if (eta < 2) {
      throw new IllegalArgumentException(file + ": pruning.eta must be >= 2 but was " + eta);
    }
    if (minSteps < 0) {
      throw new IllegalArgumentException(
          file + ": pruning.min_steps must be >= 0 but was " + minSteps);
    }
    return new Pruning(strategy, eta, minSteps);
  }
}
