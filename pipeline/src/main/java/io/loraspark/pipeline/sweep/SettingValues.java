package io.loraspark.pipeline.sweep;

import com.fasterxml.jackson.databind.JsonNode;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Adapter settings as one place of a sweep file gives them ({@code defaults}, a grid point, an
 * {@code adapters} entry): each value read once, when the file is parsed, into its {@link
 * AdapterSettings} row's type and checked against the row's range, kept in the file's order. {@link
 * SweepPlan} completes them with the table's defaults; nothing downstream reads a raw YAML value.
 *
 * <p>Immutable; {@link #with} returns a copy.
 */
public final class SettingValues {
  /**
   * One given value.
   *
   * @param value of the setting's type, within its range
   * @param idText what the value adds to an adapter id, from the value as written ({@code 2e-4}
   *     stays {@code 2e-4}, {@code 16} stays {@code 16}, {@code q,v} becomes {@code q+v})
   */
  public record Value<T>(AdapterSettings.Setting<T> setting, T value, String idText) {}

  /** One grid key: its setting and its values in the file's order (never empty). */
  public record Axis(AdapterSettings.Setting<?> setting, List<Value<?>> values) {
    public Axis {
      values = List.copyOf(values);
    }
  }

  /** No setting given: every adapter setting takes the table's default. */
  public static final SettingValues NONE = new SettingValues(new LinkedHashMap<>());

  private final Map<AdapterSettings.Setting<?>, Value<?>> given; // the file's order

  private SettingValues(LinkedHashMap<AdapterSettings.Setting<?>, Value<?>> given) {
    this.given = Collections.unmodifiableMap(given);
  }

  /**
   * Reads an adapter-settings mapping ({@code defaults}, an {@code adapters} entry).
   *
   * @param where the mapping's path for messages ({@code defaults}, {@code adapters[2]})
   * @throws IllegalArgumentException naming the file, {@code where} and the key: an unknown key, a
   *     value of the wrong type or out of its range
   */
  static SettingValues read(Path file, String where, JsonNode node) {
    SettingValues out = NONE;
    String notMapping = where + " must be a mapping of settings";
    for (Map.Entry<String, JsonNode> e :
        ConfigNodes.fields(file, node, notMapping, where + ".", SweepConfig.ADAPTER_KEYS)) {
      out = out.with(value(file, where, e.getKey(), e.getValue()));
    }
    return out;
  }

  /** The grid: each adapter setting to a non-empty list of values, in the file's order. */
  static List<Axis> readGrid(Path file, JsonNode g) {
    List<Axis> grid = new ArrayList<>();
    String notMapping = "grid must map adapter settings to lists";
    for (Map.Entry<String, JsonNode> e :
        ConfigNodes.fields(file, g, notMapping, "grid.", SweepConfig.ADAPTER_KEYS)) {
      if (!e.getValue().isArray() || e.getValue().isEmpty()) {
        throw new IllegalArgumentException(
            file + ": grid." + e.getKey() + " must be a non-empty list of values");
      }
      List<Value<?>> values = new ArrayList<>();
      for (JsonNode v : e.getValue()) {
        values.add(value(file, "grid", e.getKey(), v));
      }
      grid.add(new Axis(values.get(0).setting(), values));
    }
    return grid;
  }

  /** {@code key}'s YAML value read as its setting, failures naming the file and {@code where}. */
  private static Value<?> value(Path file, String where, String key, JsonNode node) {
    Object raw = ConfigNodes.scalar(file, where + "." + key, node);
    AdapterSettings.Setting<?> s = AdapterSettings.find(key).orElseThrow(); // keys checked
    try {
      return value(s, raw);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + where + ": " + e.getMessage(), e);
    }
  }

  /**
   * {@code raw} (a YAML scalar: Long, Double, Boolean or String) as a value of {@code s}: an
   * integer setting takes a whole number that fits, a number setting any number (or a string that
   * reads as one, {@code "3e-4"}), the seed any number (truncated), a boolean {@code true}/{@code
   * false}, a text setting any scalar's text; then the setting's range.
   *
   * @throws IllegalArgumentException "rank must be an integer in [1, 4096] but was 0"
   */
  static <T> Value<T> value(AdapterSettings.Setting<T> s, Object raw) {
    T v = s.javaType().cast(typed(s, raw));
    s.check(s.name(), v);
    return new Value<>(s, v, idText(raw));
  }

  private static Object typed(AdapterSettings.Setting<?> s, Object raw) {
    Class<?> c = s.javaType();
    if (c == Integer.class) {
      if ((raw instanceof Long || raw instanceof Integer)
          && ((Number) raw).longValue() == ((Number) raw).intValue()) {
        return ((Number) raw).intValue();
      }
      throw new IllegalArgumentException(s.name() + " must be an integer but was " + raw);
    }
    if (c == Long.class) {
      return (long) number(s, raw);
    }
    if (c == Double.class) {
      return number(s, raw);
    }
    if (c == Boolean.class) {
      if (raw instanceof Boolean b) {
        return b;
      }
      throw new IllegalArgumentException(s.name() + " must be true or false but was " + raw);
    }
    return String.valueOf(raw);
  }

  private static double number(AdapterSettings.Setting<?> s, Object raw) {
    if (raw instanceof Number n) {
      return n.doubleValue();
    }
    if (raw instanceof String str) {
      try {
        return Double.parseDouble(str); // a quoted number, "3e-4"
      } catch (NumberFormatException e) {
        // reported below with the setting's name
      }
    }
    throw new IllegalArgumentException(s.name() + " must be a number but was '" + raw + "'");
  }

  private static String idText(Object raw) {
    if (raw instanceof Double d) {
      return new BigDecimal(Double.toString(d)).stripTrailingZeros().toString().replace("E", "e");
    }
    return String.valueOf(raw).replace(",", "+");
  }

  /** {@code s}'s value, null when not given. */
  public <T> T get(AdapterSettings.Setting<T> s) {
    Value<?> v = given.get(s);
    return v == null ? null : s.javaType().cast(v.value());
  }

  /** {@code s}'s value, else {@code dflt}. */
  public <T> T get(AdapterSettings.Setting<T> s, T dflt) {
    T v = get(s);
    return v == null ? dflt : v;
  }

  /** {@code s}'s value, else the table's default (null when the default is derived). */
  public <T> T orDefault(AdapterSettings.Setting<T> s) {
    return get(s, s.defaultValue());
  }

  /** Whether {@code s} was given. */
  public boolean has(AdapterSettings.Setting<?> s) {
    return given.containsKey(s);
  }

  /** The given values in the file's order. */
  public Collection<Value<?>> values() {
    return given.values();
  }

  /** A copy with {@code over}'s values laid over these (a key keeps its first position). */
  public SettingValues with(SettingValues over) {
    LinkedHashMap<AdapterSettings.Setting<?>, Value<?>> out = new LinkedHashMap<>(given);
    out.putAll(over.given);
    return new SettingValues(out);
  }

  /** A copy with {@code v} set. */
  public SettingValues with(Value<?> v) {
    LinkedHashMap<AdapterSettings.Setting<?>, Value<?>> out = new LinkedHashMap<>(given);
    out.put(v.setting(), v);
    return new SettingValues(out);
  }

  /**
   * A copy with {@code s} set to {@code raw}, read and checked as a YAML value would be.
   *
   * @throws IllegalArgumentException as {@link #value(AdapterSettings.Setting, Object)}
   */
  public SettingValues with(AdapterSettings.Setting<?> s, Object raw) {
    return with(value(s, raw));
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof SettingValues v && given.equals(v.given);
  }

  @Override
  public int hashCode() {
    return given.hashCode();
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder("{");
    for (Value<?> v : given.values()) {
      sb.append(sb.length() > 1 ? ", " : "").append(v.setting().name()).append('=');
      sb.append(v.value());
    }
    return sb.append('}').toString();
  }
}
