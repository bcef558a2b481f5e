package io.loraspark.train.lora;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Which modules of the targeted projections carry an adapter, and with which rank and alpha: the
 * part of PEFT's {@code LoraConfig} beyond a list of target names. {@link #ALL} (every layer, the
 * adapter's own r and lora_alpha) is what this project's training configs use; the other values
 * come from loaded PEFT adapters and are matched exactly as PEFT 0.19 matches them against full
 * module names such as {@code model.layers.3.self_attn.q_proj}: {@code check_target_module_exists}
 * in {@code peft/tuners/tuners_utils.py} for the selection, {@code get_pattern_key} in {@code
 * peft/utils/other.py} for the patterns. Regexes are Python's; {@code (?P<name>...)} and {@code
 * (?P=name)} are translated, the rest of the syntax is shared with {@link Pattern}.
 *
 * @param targetRegex target_modules as a string: a regex that must match the whole module name
 *     ({@code re.fullmatch}); null when target_modules is a list (then {@link LoraConfig#targets()}
 *     names the projections)
 * @param excludeModules exclude_modules as a list: a module is excluded when its name equals an
 *     entry or ends with {@code "." + entry}; null for none
 * @param excludeRegex exclude_modules as a string, matched with {@code re.fullmatch}; null for none
 * @param layersToTransform layers_to_transform: only modules whose layer index (see {@code
 *     layersPattern}) is listed are adapted; null for every layer. Only with a list target_modules
 * @param layersPattern layers_pattern: the name of the module list before the layer index ({@code
 *     "layers"}), tried in order; null for PEFT's generic rule (the last {@code .<name>.<digits>.})
 * @param rankPattern rank_pattern in file order: the first key matching a module's name gives its
 *     r; empty for none
 * @param alphaPattern alpha_pattern in file order: the first matching key gives its lora_alpha;
 *     empty for none
 */
public record ModuleSelection(
    String targetRegex,
    List<String> excludeModules,
    String excludeRegex,
    List<Integer> layersToTransform,
    List<String> layersPattern,
    List<Rule> rankPattern,
    List<Rule> alphaPattern)
    implements Serializable {

  /** One entry of a rank or alpha pattern: a regex key and the value it gives. */
  public record Rule(String key, double value) implements Serializable {}

  /** Every layer of every targeted projection, with the adapter's own r and lora_alpha. */
  public static final ModuleSelection ALL =
      new ModuleSelection(null, null, null, null, null, List.of(), List.of());

  /** PEFT's generic layer-index rule when layers_pattern is empty. */
  private static final Pattern ANY_LAYER = Pattern.compile(".*\\.[^.]*\\.(\\d+)\\.");

  /**
   * Normalises empty forms to their neutral value (an empty list or string means "none", as in
   * PEFT) and checks the combinations PEFT's {@code LoraConfig.__post_init__} refuses.
   *
   * @throws IllegalArgumentException naming the key when a regex does not compile or two keys
   *     cannot be combined
   */
  public ModuleSelection {
    excludeModules = // a set in PEFT
        excludeModules == null || excludeModules.isEmpty()
            ? null
            : excludeModules.stream().distinct().sorted().toList();
    excludeRegex = excludeRegex == null || excludeRegex.isEmpty() ? null : excludeRegex;
    layersToTransform = // PEFT tests membership
        layersToTransform == null || layersToTransform.isEmpty()
            ? null
            : layersToTransform.stream().distinct().sorted().toList();
    layersPattern =
        layersPattern == null || layersPattern.isEmpty() ? null : List.copyOf(layersPattern);
    rankPattern = rankPattern == null ? List.of() : List.copyOf(rankPattern);
    alphaPattern = alphaPattern == null ? List.of() : List.copyOf(alphaPattern);
    if (targetRegex != null) {
      compile("target_modules", targetRegex);
    }
    if (excludeRegex != null) {
      compile("exclude_modules", excludeRegex);
    }
    if (excludeModules != null && excludeRegex != null) {
      throw new IllegalArgumentException("exclude_modules is either a list or a regex, not both");
    }
    if (targetRegex != null && layersToTransform != null) {
      throw new IllegalArgumentException(
          "layers_to_transform cannot be used when target_modules is a string (PEFT refuses it"
              + " too); list the module names, or write the layers into the regex");
    }
    if (layersPattern != null && layersToTransform == null) {
      throw new IllegalArgumentException(
          "layers_pattern is set but layers_to_transform is not (PEFT refuses it too); set"
              + " layers_to_transform or drop layers_pattern");
    }
    for (String p : layersPattern == null ? List.<String>of() : layersPattern) {
      if (compile("layers_pattern", layerRegex(p)).matcher("").groupCount() != 1) {
        throw new IllegalArgumentException(
            "layers_pattern holds "
                + p
                + ", which has a capturing group; PEFT reads the layer index from the first"
                + " group, so use (?:...)");
      }
    }
    for (Rule r : rankPattern) {
      compileKey("rank_pattern", r.key());
      if (!(r.value() >= 1
          && r.value() == Math.rint(r.value())
          && r.value() <= Integer.MAX_VALUE)) {
        throw new IllegalArgumentException(
            "rank_pattern gives "
                + r.key()
                + " the rank "
                + r.value()
                + "; expected an integer >= 1");
      }
    }
    for (Rule r : alphaPattern) {
      compileKey("alpha_pattern", r.key());
      if (!(r.value() > 0 && Double.isFinite(r.value()))) {
        throw new IllegalArgumentException(
            "alpha_pattern gives "
                + r.key()
                + " the alpha "
                + r.value()
                + "; expected a finite"
                + " number > 0");
      }
    }
  }

  /** Whether a rank or alpha pattern may give some module its own rank or scaling. */
  public boolean hasPatterns() {
    return !rankPattern.isEmpty() || !alphaPattern.isEmpty();
  }

  /** This selection without its rank and alpha patterns (every module at the adapter's r). */
  public ModuleSelection withoutPatterns() {
    return new ModuleSelection(
        targetRegex,
        excludeModules,
        excludeRegex,
        layersToTransform,
        layersPattern,
        List.of(),
        List.of());
  }

  /**
   * PEFT's {@code check_target_module_exists} for one module: not excluded, and matched by the
   * regex target_modules, or (list form) named by {@code targetName} and in a transformed layer.
   *
   * @param name the full module name, e.g. {@code model.layers.3.self_attn.q_proj}
   * @param targetNames the list form's target_modules entries (ignored when {@link #targetRegex} is
   *     set)
   */
  public boolean selects(String name, List<String> targetNames) {
    if (excludeRegex != null && compile("exclude_modules", excludeRegex).matcher(name).matches()) {
      return false;
    }
    if (excludeModules != null
        && (excludeModules.contains(name) || excludeModules.stream().anyMatch(suffixOf(name)))) {
      return false;
    }
    if (targetRegex != null) {
      return compile("target_modules", targetRegex).matcher(name).matches();
    }
    if (targetNames.contains(name)) {
      return true; // a full name: PEFT applies no layer filter
    }
    if (targetNames.stream().noneMatch(suffixOf(name))) {
      return false;
    }
    if (layersToTransform == null) {
      return true;
    }
    Integer index = layerIndex(name);
    return index != null && layersToTransform.contains(index);
  }

  private static java.util.function.Predicate<String> suffixOf(String name) {
    return t -> name.endsWith("." + t);
  }

  /** The layer index PEFT reads from {@code name}, or null when no pattern finds one. */
  private Integer layerIndex(String name) {
    List<Pattern> rules = new ArrayList<>();
    if (layersPattern == null) {
      rules.add(ANY_LAYER);
    } else {
      for (String p : layersPattern) {
        rules.add(compile("layers_pattern", layerRegex(p)));
      }
    }
    for (Pattern rule : rules) {
      Matcher m = rule.matcher(name);
      if (m.lookingAt()) { // re.match: anchored at the start only
        return Integer.valueOf(m.group(1));
      }
    }
    return null;
  }

  /** The r of module {@code name}: its rank_pattern value, or {@code rank}. */
  public int rank(String name, int rank) {
    Double v = patternValue(rankPattern, name);
    return v == null ? rank : (int) (double) v;
  }

  /** The lora_alpha of module {@code name}: its alpha_pattern value, or {@code alpha}. */
  public double alpha(String name, double alpha) {
    Double v = patternValue(alphaPattern, name);
    return v == null ? alpha : v;
  }

  /**
   * PEFT's {@code get_pattern_key}: the first key with {@code re.match(rf"(.*\.)?({key})$", name)},
   * else the key equal to {@code name}; null when none applies.
   */
  private static Double patternValue(List<Rule> rules, String name) {
    for (Rule r : rules) {
      if (compile("pattern", keyRegex(r.key())).matcher(name).lookingAt()) {
        return r.value();
      }
    }
    for (Rule r : rules) {
      if (r.key().equals(name)) {
        return r.value();
      }
    }
    return null;
  }

  /** PEFT's {@code rf".*\.{pattern}\.(\d+)\."}. */
  private static String layerRegex(String pattern) {
    return ".*\\." + pattern + "\\.(\\d+)\\.";
  }

  private static String keyRegex(String key) {
    return "(.*\\.)?(" + key + ")$";
  }

  /** Checks that pattern key {@code key} compiles as PEFT uses it. */
  private static void compileKey(String patternName, String key) {
    try {
      Pattern.compile(python(keyRegex(key)));
    } catch (PatternSyntaxException e) {
      throw new IllegalArgumentException(
          patternName
              + " holds the key "
              + key
              + ", which does not compile as the regex "
              + keyRegex(key)
              + " PEFT matches it with: "
              + e.getDescription());
    }
  }

  /**
   * A Python regex as a {@link Pattern}, with Python's named-group spellings translated.
   *
   * @param key the config key, named in the message
   * @throws IllegalArgumentException when it does not compile
   */
  static Pattern compile(String key, String pythonRegex) {
    try {
      return Pattern.compile(python(pythonRegex));
    } catch (PatternSyntaxException e) {
      throw new IllegalArgumentException(
          key
              + " holds the regex "
              + pythonRegex
              + ", which does not compile: "
              + e.getDescription()
              + " near index "
              + e.getIndex());
    }
  }

  /** Python's named-group spellings in Java's: {@code (?P<n>} and {@code (?P=n)}. */
  private static String python(String regex) {
    return regex.replace("(?P<", "(?<").replaceAll("\\(\\?P=(\\w+)\\)", "\\\\k<$1>");
  }
}
