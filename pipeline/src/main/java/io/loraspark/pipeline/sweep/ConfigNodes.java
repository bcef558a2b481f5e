package io.loraspark.pipeline.sweep;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Reads the fields of a sweep config's YAML nodes ({@link SweepConfig}, {@link Stage}): each
 * failure is one line naming the file and the key.
 */
final class ConfigNodes {
  private ConfigNodes() {}

  /**
   * The fields of a mapping in the file's order, none when it is absent or null.
   *
   * @param notMapping the message (after the file) when the node is not a mapping
   * @param prefix the keys' path for an unknown key's message ({@code grid.})
   * @param valid the valid keys, or null for any
   */
  static List<Map.Entry<String, JsonNode>> fields(
      Path file, JsonNode node, String notMapping, String prefix, Set<String> valid) {
    if (node == null || node.isNull()) {
      return List.of();
    }
    if (!node.isObject()) {
      throw new IllegalArgumentException(file + ": " + notMapping);
    }
    if (valid != null) {
      checkKeys(file, prefix, node, valid);
    }
    List<Map.Entry<String, JsonNode>> out = new ArrayList<>();
    node.fields().forEachRemaining(out::add);
    return out;
  }

  /** A setting value: number, boolean or string; a list of strings is joined (targets). */
  static Object scalar(Path file, String key, JsonNode v) {
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

  static String required(Path file, JsonNode root, String key) {
    String v = text(file, root, key, null);
    if (v == null || v.isBlank()) {
      throw new IllegalArgumentException(file + ": '" + key + "' is required");
    }
    return v;
  }

  static String text(Path file, JsonNode root, String key, String dflt) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isValueNode()) {
      throw new IllegalArgumentException(file + ": '" + key + "' must be a string");
    }
    return v.asText();
  }

  static boolean bool(Path file, JsonNode root, String key, boolean dflt) {
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

  static int integer(Path file, JsonNode root, String key, int dflt) {
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
