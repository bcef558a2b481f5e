package io.loraspark.pipeline.sweep;

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
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A sweep, as read from YAML: where the base model, data and run directory are, the default adapter
 * settings, the grid (setting → values; the sweep is their cross product) and/or an explicit list
 * of adapters, how many adapters one Spark task trains fused, and the pruning rule.
 *
 * <p>Validated strictly: an unknown key anywhere is an error that lists the valid keys; values are
 * checked when the adapters are built ({@link SweepPlan}). YAML is parsed as data only (Jackson's
 * SnakeYAML-backed parser builds no objects from tags), so a config can never run code.
 *
 * @param adapterSettings explicit adapters, each a map of settings over {@code defaults}
 * @param spark extra Spark settings ({@code spark.*} keys) applied to the session
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
    Map<String, Object> defaults,
    Map<String, List<Object>> grid,
    List<Map<String, Object>> adapterSettings,
    int adaptersPerTask,
    Pruning pruning,
    int checkpointEvery,
    Map<String, String> spark,
    Map<String, Object> preprocess,
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
          file + ": not valid YAML (" + SweepConfig.oneLine(e.getOriginalMessage()) + ")");
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
    Map<String, Object> defaults = settings(file, "defaults", root.get("defaults"));
    Map<String, List<Object>> grid = new LinkedHashMap<>();
    JsonNode g = root.get("grid");
    if (g != null && !g.isNull()) {
      if (!g.isObject()) {
        throw new IllegalArgumentException(file + ": grid must map adapter settings to lists");
      }
      checkKeys(file, "grid.", g, ADAPTER_KEYS);
      for (Iterator<Map.Entry<String, JsonNode>> it = g.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        if (!e.getValue().isArray() || e.getValue().isEmpty()) {
          throw new IllegalArgumentException(
              file + ": grid." + e.getKey() + " must be a non-empty list of values");
        }
        List<Object> values = new ArrayList<>();
        for (JsonNode v : e.getValue()) {
          values.add(scalar(file, "grid." + e.getKey(), v));
        }
        grid.put(e.getKey(), values);
      }
    }
    List<Map<String, Object>> adapters = new ArrayList<>();
    JsonNode a = root.get("adapters");
    if (a != null && !a.isNull()) {
      if (!a.isArray()) {
        throw new IllegalArgumentException(file + ": adapters must be a list of setting maps");
      }
      for (int i = 0; i < a.size(); i++) {
        adapters.add(settings(file, "adapters[" + i + "]", a.get(i)));
      }
    }
    Pruning pruning = Pruning.NONE;
    JsonNode p = root.get("pruning");
    if (p != null && !p.isNull()) {
      if (p.isTextual()) {
        pruning = pruning(file, p.asText(), 3, 0);
      } else if (!p.isObject()) {
        throw new IllegalArgumentException(
            file
                + ": pruning must be none, successive_halving or a mapping of "
                + String.join(", ", PRUNING_KEYS)
                + " but was "
                + p);
      } else {
        checkKeys(file, "pruning.", p, PRUNING_KEYS);
        pruning =
            pruning(
                file,
                text(file, p, "strategy", "successive_halving"),
                integer(file, p, "eta", 3),
                integer(file, p, "min_steps", 0));
      }
    }
    Map<String, String> spark = new LinkedHashMap<>();
    JsonNode s = root.get("spark");
    if (s != null && !s.isNull()) {
      if (!s.isObject()) {
        throw new IllegalArgumentException(file + ": spark must map spark.* keys to values");
      }
      for (Iterator<Map.Entry<String, JsonNode>> it = s.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        if (!e.getKey().startsWith("spark.") || e.getValue().isContainerNode()) {
          throw new IllegalArgumentException(
              file + ": spark." + e.getKey() + " must be a spark.* key with a scalar value");
        }
        spark.put(e.getKey(), e.getValue().asText());
      }
    }
    Map<String, Object> preprocess = new LinkedHashMap<>();
    JsonNode pre = root.get("preprocess");
    if (pre != null && !pre.isNull()) {
      if (!pre.isObject()) {
        throw new IllegalArgumentException(file + ": preprocess must be a mapping");
      }
      checkKeys(file, "preprocess.", pre, PREPROCESS_KEYS);
      for (Iterator<Map.Entry<String, JsonNode>> it = pre.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        preprocess.put(e.getKey(), scalar(file, "preprocess." + e.getKey(), e.getValue()));
      }
      if (!preprocess.containsKey("input")) {
        throw new IllegalArgumentException(file + ": preprocess.input is required");
      }
    }
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
    BaseQuant baseQuant;
    try {
      baseQuant = BaseQuant.parse(quant);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
    }
    boolean recompute = bool(file, root, "recompute_activations", false);
    Precision precision;
    try {
      precision = Precision.parse(text(file, root, "precision", Precision.DEFAULT.key()));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
    }
    List<Stage> stages = Stage.parse(file, root);
    return new SweepConfig(
        file,
        required(file, root, "model"),
        preprocess.isEmpty() && stages.isEmpty()
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

  private static Map<String, Object> settings(Path file, String where, JsonNode node) {
    Map<String, Object> out = new LinkedHashMap<>();
    if (node == null || node.isNull()) {
      return out;
    }
    if (!node.isObject()) {
      throw new IllegalArgumentException(file + ": " + where + " must be a mapping of settings");
    }
    checkKeys(file, where + ".", node, ADAPTER_KEYS);
    for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      out.put(e.getKey(), scalar(file, where + "." + e.getKey(), e.getValue()));
    }
    return out;
  }

  /** A setting value: number, boolean or string; a list of strings is joined (targets). */
  private static Object scalar(Path file, String key, JsonNode v) {
    if (v.isIntegralNumber()) {
      return v.longValue();
    }
    if (v.isNumber()) {
      return v.doubleValue();
    }
    if (v.isBoolean()) {
      return v.booleanValue();
    }
    if (v.isTextual()) {
      return v.asText();
    }
    if (v.isArray()) {
      List<String> parts = new ArrayList<>();
      for (JsonNode x : v) {
        if (!x.isTextual()) {
          throw new IllegalArgumentException(
              file + ": " + key + " must be a scalar or a list of names but has " + x);
        }
        parts.add(x.asText());
      }
      return String.join(",", parts);
    }
    throw new IllegalArgumentException(file + ": " + key + " must be a scalar value but was " + v);
  }

  static void checkKeys(Path file, String prefix, JsonNode node, Set<String> valid) {
    for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
      String k = it.next();
      if (!valid.contains(k)) {
        throw new IllegalArgumentException(
            file
                + ": unknown key '"
                + prefix
                + k
                + "'; valid keys"
                + (prefix.isEmpty() ? "" : " in " + prefix.substring(0, prefix.length() - 1))
                + ": "
                + String.join(", ", new TreeSet<>(valid)));
      }
    }
  }

  private static String required(Path file, JsonNode root, String key) {
    String v = text(file, root, key, null);
    if (v == null || v.isBlank()) {
      throw new IllegalArgumentException(file + ": '" + key + "' is required");
    }
    return v;
  }

  private static String text(Path file, JsonNode root, String key, String dflt) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isValueNode()) {
      throw new IllegalArgumentException(file + ": '" + key + "' must be a string");
    }
    return v.asText();
  }

  private static boolean bool(Path file, JsonNode root, String key, boolean dflt) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isBoolean()) {
      throw new IllegalArgumentException(
          file + ": '" + key + "' must be true or false but was " + v);
    }
    return v.booleanValue();
  }

  private static int integer(Path file, JsonNode root, String key, int dflt) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isIntegralNumber() || !v.canConvertToInt()) {
      throw new IllegalArgumentException(file + ": '" + key + "' must be an integer but was " + v);
    }
    return v.intValue();
  }

  static String oneLine(String s) {
    return s == null ? "" : s.replaceAll("\\s*\\R\\s*", " ").trim();
  }
}
