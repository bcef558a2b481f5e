package io.loraspark.pipeline.sweep;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * One stage of a staged sweep ({@code stages:} in the sweep YAML): a sweep of its own, read as the
 * top-level config with the stage's keys laid over it ({@code defaults} merged key by key; {@code
 * data}/{@code preprocess}, {@code grid}/{@code adapters} and {@code pruning} replaced), whose
 * adapters (from the second stage on) each train on top of one of the previous stage's {@code topK}
 * best finished adapters.
 *
 * @param name unique, file-name safe: the stage's directory {@code stages/<name>/} and its
 *     adapters' id prefix
 * @param topK how many of the previous stage's best adapters become parents (1 for the first)
 * @param sweep the stage's own sweep (never staged itself)
 */
public record Stage(String name, int topK, SweepConfig sweep) {
  /** Keys of a {@code stages} entry ({@link ConfigKeys#STAGE}). */
  public static final Set<String> KEYS = ConfigKeys.names(ConfigKeys.STAGE);

  /** Keys of a stage's {@code parents} mapping. */
  public static final Set<String> PARENTS_KEYS = ConfigKeys.names(ConfigKeys.PARENTS);

  public Stage {
    if (topK < 1) {
      throw new IllegalArgumentException("parents.top_k must be >= 1 but was " + topK);
    }
  }

  /**
   * Reads the {@code stages} list of a sweep file.
   *
   * @param root the whole config, whose other keys each stage starts from
   * @return the stages in order; empty when the config has no {@code stages}
   * @throws IllegalArgumentException naming the file, the stage and the key
   */
  static List<Stage> parse(Path file, JsonNode root) {
    JsonNode list = root.get("stages");
    if (list == null) {
      return List.of();
    }
    if (!list.isArray() || list.isEmpty()) {
      throw new IllegalArgumentException(
          file + ": stages must be a non-empty list of stage mappings but was " + list);
    }
    List<Stage> out = new ArrayList<>();
    Set<String> names = new HashSet<>();
    for (int i = 0; i < list.size(); i++) {
      Stage s = stage(file, root, i, list.get(i));
      if (!names.add(s.name())) {
        throw new IllegalArgumentException(
            file + ": stages[" + i + "].name '" + s.name() + "' is used by an earlier stage");
      }
      out.add(s);
    }
    return List.copyOf(out);
  }

  private static Stage stage(Path file, JsonNode root, int i, JsonNode node) {
    String where = "stages[" + i + "]";
    if (!node.isObject()) {
      throw new IllegalArgumentException(file + ": " + where + " must be a mapping");
    }
    ConfigNodes.checkKeys(file, where + ".", node, KEYS);
    JsonNode n = node.get("name");
    if (n == null || !n.isTextual() || !n.asText().matches("[A-Za-z0-9][A-Za-z0-9._-]{0,63}")) {
      throw new IllegalArgumentException(
          file + ": " + where + ".name must be 1-64 letters, digits, '.', '_' or '-' but was " + n);
    }
    int topK = topK(file, where, i, node.get("parents"));
    if (i > 0 && node.path("defaults").has(AdapterSettings.PARENT.name())) {
      throw new IllegalArgumentException(
          file
              + ": "
              + where
              + ".defaults.parent: a stage after the first takes its parents from the previous"
              + " stage; remove the key");
    }
    try {
      return new Stage(n.asText(), topK, SweepConfig.parse(file, overlay(root, node)));
    } catch (IllegalArgumentException e) {
      throw where(file, i, n.asText(), e);
    }
  }

  /**
   * Plans this stage (see {@link SweepPlan#expand(SweepConfig, String, List)}), its ids prefixed
   * with its name.
   *
   * @param index the stage's position, for messages
   * @throws IllegalArgumentException naming the file and the stage
   */
  List<SweepPlan.Planned> plan(int index, List<SweepPlan.Parent> parents) {
    return plan(sweep, index, parents);
  }

  /** As {@link #plan(int, List)} with the stage's sweep replaced (its data made ready). */
  List<SweepPlan.Planned> plan(SweepConfig ready, int index, List<SweepPlan.Parent> parents) {
    try {
      return SweepPlan.expand(ready, name + "-", parents);
    } catch (IllegalArgumentException e) {
      throw where(sweep.source(), index, name, e);
    }
  }

  /** {@code e}'s one line with the stage named after the file. */
  private static IllegalArgumentException where(
      Path file, int index, String name, IllegalArgumentException e) {
    String prefix = file + ": ";
    String m = e.getMessage();
    return new IllegalArgumentException(
        prefix
            + "stages["
            + index
            + "] ("
            + name
            + "): "
            + (m.startsWith(prefix) ? m.substring(prefix.length()) : m),
        e);
  }

  private static int topK(Path file, String where, int i, JsonNode parents) {
    if (parents == null || parents.isNull()) {
      return 1;
    }
    if (i == 0) {
      throw new IllegalArgumentException(
          file
              + ": "
              + where
              + ".parents: the first stage has no previous stage to take parents from");
    }
    if (!parents.isObject()) {
      throw new IllegalArgumentException(
          file + ": " + where + ".parents must be a mapping like {top_k: 2} but was " + parents);
    }
    ConfigNodes.checkKeys(file, where + ".parents.", parents, PARENTS_KEYS);
    JsonNode k = parents.path("top_k");
    if (!k.isIntegralNumber() || !k.canConvertToInt() || k.intValue() < 1) {
      throw new IllegalArgumentException(
          file + ": " + where + ".parents.top_k must be an integer >= 1 but was " + k);
    }
    return k.intValue();
  }

  /** The top-level config without {@code stages}, with the stage's keys laid over it. */
  private static ObjectNode overlay(JsonNode root, JsonNode stage) {
    ObjectNode c = (ObjectNode) root.deepCopy();
    c.remove("stages");
    if (stage.has("data") || stage.has("preprocess")) {
      c.remove(List.of("data", "preprocess"));
    }
    if (stage.has("grid") || stage.has("adapters")) {
      c.remove(List.of("grid", "adapters"));
    }
    for (String k : List.of("data", "preprocess", "grid", "adapters", "pruning")) {
      if (stage.has(k)) {
        c.set(k, stage.get(k).deepCopy());
      }
    }
    JsonNode d = stage.get("defaults");
    if (d != null && !d.isNull()) {
      JsonNode top = c.get("defaults");
      if (d.isObject() && top != null && top.isObject()) {
        ObjectNode merged = (ObjectNode) top.deepCopy();
        merged.setAll((ObjectNode) d.deepCopy());
        c.set("defaults", merged);
      } else {
        c.set("defaults", d.deepCopy());
      }
    }
    return c;
  }
}
