package io.loraspark.train.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The keys of {@code adapter_config.json} that say which modules carry the adapter and with which
 * rank and alpha ({@code target_modules}, {@code exclude_modules}, {@code layers_to_transform},
 * {@code layers_pattern}, {@code rank_pattern}, {@code alpha_pattern}), read into a {@link
 * ModuleSelection} and written back, with the checks PEFT 0.19 makes on them.
 */
final class PeftModuleKeys {

  /** PEFT's shorthand for every linear layer but the output head. */
  static final String ALL_LINEAR = "all-linear";

  /** The targets and selection read from a config. */
  record Parsed(List<Projection> targets, ModuleSelection selection) {}

  private PeftModuleKeys() {}

  /**
   * Reads the selection keys of {@code root}.
   *
   * @param patterns whether rank_pattern and alpha_pattern are per-module LoRA patterns (LoRA,
   *     DoRA, Delta-LoRA); for VeRA they must be empty; AdaLoRA reads its own rank_pattern
   *     elsewhere and, as PEFT, ignores alpha_pattern
   * @param adaLora whether the config is an AdaLoraConfig
   * @throws IllegalArgumentException naming the file and key for a malformed or unsupported value
   */
  static Parsed parse(Path file, JsonNode root, boolean patterns, boolean adaLora) {
    JsonNode t = root.get("target_modules");
    List<Projection> targets;
    String regex = null;
    if (t != null && t.isTextual()) {
      targets = List.of(Projection.values());
      regex = t.textValue().toLowerCase(Locale.ROOT).equals(ALL_LINEAR) ? null : t.textValue();
    } else {
      targets = targetList(file, t);
    }
    JsonNode ex = root.get("exclude_modules");
    String excludeRegex = ex != null && ex.isTextual() ? ex.textValue() : null;
    List<String> excludeList = excludeRegex != null ? null : strings(file, "exclude_modules", ex);
    List<ModuleSelection.Rule> ranks = List.of();
    List<ModuleSelection.Rule> alphas = List.of();
    if (patterns) {
      ranks = rules(file, root, "rank_pattern", true);
      alphas = rules(file, root, "alpha_pattern", false);
    } else if (!adaLora) {
      for (String key : List.of("rank_pattern", "alpha_pattern")) {
        JsonNode v = root.get(key);
        if (v != null && !v.isNull() && !(v.isObject() && v.isEmpty())) {
          throw PeftAdapterConfig.bad(
              file,
              key,
              "is " + v + ", but VeRA has one rank shared by every module; valid: {} or null");
        }
      }
    }
    for (String key : List.of("layers_to_transform", "layers_pattern")) {
      if (t != null && t.isTextual() && present(root.get(key))) {
        throw PeftAdapterConfig.bad(
            file,
            key,
            "is "
                + root.get(key)
                + " but target_modules is the string "
                + t
                + ", which PEFT refuses; valid: null, or list the module names in target_modules");
      }
    }
    List<Integer> layers =
        layers(file, root.get("layers_to_transform"), root.get("layers_pattern"));
    List<String> layersPattern = layersPattern(file, root.get("layers_pattern"));
    try {
      ModuleSelection s =
          new ModuleSelection(
              regex, excludeList, excludeRegex, layers, layersPattern, ranks, alphas);
      return new Parsed(targets, s);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
    }
  }

  private static boolean present(JsonNode v) {
    return v != null && !v.isNull();
  }

  private static List<Projection> targetList(Path file, JsonNode t) {
    String valid = validModules();
    if (t == null || t.isNull()) {
      throw PeftAdapterConfig.bad(
          file,
          "target_modules",
          "is missing; expected a list of names among "
              + valid
              + ", a regex string or \""
              + ALL_LINEAR
              + "\"");
    }
    if (!t.isArray() || t.isEmpty()) {
      throw PeftAdapterConfig.bad(
          file,
          "target_modules",
          "is "
              + t
              + "; expected a non-empty list among "
              + valid
              + ", a regex string or \""
              + ALL_LINEAR
              + "\"");
    }
    List<Projection> out = new ArrayList<>();
    for (JsonNode e : t) {
      out.add(projection(file, e, valid));
    }
    return out;
  }

  private static Projection projection(Path file, JsonNode e, String valid) {
    if (e.isTextual()) {
      for (Projection p : Projection.values()) {
        if (PeftAdapterConfig.moduleName(p).equals(e.textValue())) {
          return p;
        }
      }
    }
    throw PeftAdapterConfig.bad(
        file, "target_modules", "names " + e + ", which is not one of " + valid);
  }

  static String validModules() {
    return Arrays.toString(
        Arrays.stream(Projection.values()).map(PeftAdapterConfig::moduleName).toArray());
  }

  /** A list of strings, a null for null or absent. */
  private static List<String> strings(Path file, String key, JsonNode v) {
    if (v == null || v.isNull()) {
      return null;
    }
    if (!v.isArray()) {
      throw PeftAdapterConfig.bad(
          file, key, "is " + v + "; expected null, a string (regex) or a list of strings");
    }
    List<String> out = new ArrayList<>();
    for (JsonNode e : v) {
      if (!e.isTextual()) {
        throw PeftAdapterConfig.bad(
            file, key, "holds " + e + "; expected null, a string or a list of strings");
      }
      out.add(e.textValue());
    }
    return out;
  }

  /**
   * layers_to_transform: null, an integer or a list of integers, each >= 0. PEFT refuses a truthy
   * layers_pattern with a falsy layers_to_transform, which includes the integer 0.
   */
  private static List<Integer> layers(Path file, JsonNode v, JsonNode pattern) {
    String key = "layers_to_transform";
    if (v == null || v.isNull()) {
      return null;
    }
    List<Integer> out = new ArrayList<>();
    if (v.isArray()) {
      for (JsonNode e : v) {
        out.add(layerIndex(file, key, e, "holds "));
      }
      return out;
    }
    int only = layerIndex(file, key, v, "is ");
    boolean truthyPattern =
        pattern != null
            && (pattern.isTextual()
                ? !pattern.textValue().isEmpty()
                : pattern.isArray() && pattern.size() > 0);
    if (only == 0 && truthyPattern) {
      throw PeftAdapterConfig.bad(
          file,
          key,
          "is 0 with layers_pattern "
              + pattern
              + ", which PEFT refuses (it reads 0 as unset); valid: [0]");
    }
    return List.of(only);
  }

  private static int layerIndex(Path file, String key, JsonNode e, String verb) {
    if (!e.isIntegralNumber() || !e.canConvertToInt() || e.intValue() < 0) {
      throw PeftAdapterConfig.bad(
          file, key, verb + e + "; expected null, a layer index >= 0 or a list of them");
    }
    return e.intValue();
  }

  private static List<String> layersPattern(Path file, JsonNode v) {
    if (v != null && v.isTextual()) {
      return v.textValue().isEmpty() ? null : List.of(v.textValue());
    }
    return strings(file, "layers_pattern", v);
  }

  /** rank_pattern or alpha_pattern in file order: null and {} are empty. */
  private static List<ModuleSelection.Rule> rules(
      Path file, JsonNode root, String key, boolean ranks) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return List.of();
    }
    if (!v.isObject()) {
      throw PeftAdapterConfig.bad(
          file, key, "is " + v + "; expected an object mapping module-name regexes to values");
    }
    List<ModuleSelection.Rule> out = new ArrayList<>();
    for (Map.Entry<String, JsonNode> e : (Iterable<Map.Entry<String, JsonNode>>) v::fields) {
      JsonNode x = e.getValue();
      boolean ok =
          ranks
              ? x.isIntegralNumber() && x.canConvertToInt() && x.intValue() >= 1
              : x.isNumber() && x.doubleValue() > 0 && Double.isFinite(x.doubleValue());
      if (!ok) {
        throw PeftAdapterConfig.bad(
            file,
            key,
            "gives "
                + e.getKey()
                + " the value "
                + x
                + "; expected "
                + (ranks ? "an integer rank >= 1" : "a finite number > 0"));
      }
      out.add(new ModuleSelection.Rule(e.getKey(), x.doubleValue()));
    }
    return out;
  }

  /**
   * Writes the selection keys of {@code c}: target_modules (sorted names, or the regex),
   * layers_to_transform, layers_pattern, exclude_modules (only when set), and, when {@code
   * patterns}, rank_pattern and alpha_pattern in their own order.
   */
  static void render(ObjectNode n, LoraConfig c, boolean patterns) {
    ModuleSelection s = c.selection();
    if (s.targetRegex() != null) {
      n.put("target_modules", s.targetRegex());
    } else {
      ArrayNode targets = n.putArray("target_modules");
      c.targets().stream().map(PeftAdapterConfig::moduleName).sorted().forEach(targets::add);
    }
    if (s.layersToTransform() == null) {
      n.putNull("layers_to_transform");
    } else {
      s.layersToTransform().forEach(n.putArray("layers_to_transform")::add);
    }
    if (s.layersPattern() == null) {
      n.putNull("layers_pattern");
    } else if (s.layersPattern().size() == 1 && !s.layersPattern().get(0).isEmpty()) {
      n.put("layers_pattern", s.layersPattern().get(0));
    } else {
      s.layersPattern().forEach(n.putArray("layers_pattern")::add);
    }
    if (s.excludeRegex() != null) {
      n.put("exclude_modules", s.excludeRegex());
    } else if (s.excludeModules() != null) {
      s.excludeModules().stream().sorted().forEach(n.putArray("exclude_modules")::add);
    }
    if (patterns) {
      ObjectNode ranks = n.putObject("rank_pattern");
      s.rankPattern().forEach(r -> ranks.put(r.key(), (int) r.value()));
      ObjectNode alphas = n.putObject("alpha_pattern");
      s.alphaPattern().forEach(r -> putNumber(alphas, r.key(), r.value()));
    }
  }

  /** Writes an integral value as an integer (as Python writes an int), else as a float. */
  static void putNumber(ObjectNode n, String key, double v) {
    if (v == Math.rint(v) && Math.abs(v) < 1e15) {
      n.put(key, (long) v);
    } else {
      n.put(key, v);
    }
  }

  /**
   * Checks {@code config}'s selection against the model it is loaded for: a regex target_modules
   * may match only the seven projections (PEFT would adapt a matched lm_head or embed_tokens, and
   * refuses norms and containers), and at least one module must be selected.
   *
   * @throws PeftAdapter.ModelMismatchException when layers_to_transform names only layers the model
   *     lacks (a different base model would explain it)
   * @throws IllegalArgumentException naming the file and key otherwise
   */
  static void checkModel(Path file, LoraConfig config, ModelConfig model) {
    ModuleSelection s = config.selection();
    if (s.targetRegex() != null) {
      for (String other : otherModules(model.numLayers())) {
        if (s.selects(other, List.of())) {
          throw PeftAdapterConfig.bad(
              file,
              "target_modules",
              "is the regex \""
                  + s.targetRegex()
                  + "\", which also matches "
                  + other
                  + "; this engine adapts only "
                  + validModules()
                  + " (narrow the regex or add exclude_modules)");
        }
      }
    }
    for (int l = 0; l < model.numLayers(); l++) {
      for (Projection p : config.targets()) {
        if (config.selects(l, p)) {
          return;
        }
      }
    }
    List<Integer> layers = s.layersToTransform();
    if (layers != null && layers.stream().allMatch(l -> l >= model.numLayers())) {
      throw new PeftAdapter.ModelMismatchException(
          file
              + ": layers_to_transform "
              + layers
              + " names no layer of this model, which has "
              + model.numLayers()
              + " layers");
    }
    String key =
        s.targetRegex() != null
            ? "target_modules"
            : s.excludeModules() != null || s.excludeRegex() != null
                ? "exclude_modules"
                : s.layersPattern() != null ? "layers_pattern" : "layers_to_transform";
    throw PeftAdapterConfig.bad(
        file,
        key,
        "leaves no module to adapt on a model with "
            + model.numLayers()
            + " layers (target_modules "
            + (s.targetRegex() != null ? "\"" + s.targetRegex() + "\"" : config.targets())
            + ", exclude_modules "
            + (s.excludeRegex() != null ? "\"" + s.excludeRegex() + "\"" : s.excludeModules())
            + ", layers_to_transform "
            + layers
            + ", layers_pattern "
            + s.layersPattern()
            + "); PEFT refuses such a config too; valid: a selection that keeps at least one of "
            + validModules()
            + " in model.layers.<0.."
            + (model.numLayers() - 1)
            + ">");
  }

  /**
   * The names of the modules of a Hugging Face Llama-family causal LM (Llama, Mistral, Qwen2:
   * {@code named_modules()} in current transformers) that are not one of the seven projections.
   */
  private static List<String> otherModules(int numLayers) {
    List<String> out =
        new ArrayList<>(
            List.of(
                "model", "model.embed_tokens", "model.layers", "model.norm", "model.rotary_emb"));
    for (int l = 0; l < numLayers; l++) {
      String p = "model.layers." + l;
      out.addAll(
          List.of(
              p,
              p + ".self_attn",
              p + ".mlp",
              p + ".mlp.act_fn",
              p + ".input_layernorm",
              p + ".post_attention_layernorm"));
    }
    out.add("lm_head");
    return out;
  }
}
