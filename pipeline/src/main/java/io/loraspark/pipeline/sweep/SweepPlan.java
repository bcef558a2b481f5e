package io.loraspark.pipeline.sweep;

import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.loop.TrainConfig;
import io.loraspark.train.lora.AdapterChain;
import io.loraspark.train.lora.AdapterParent;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.model.Projection;
import io.loraspark.train.optim.LrSchedule;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The adapters of a sweep: the grid's cross product (in the grid's key order, last key fastest)
 * followed by the explicit adapters, each resolved as product defaults ← {@code defaults} ← grid
 * point or adapter entry. Ids are stable and readable: {@code a007-r8-x16} says adapter 7 with rank
 * 8 and lr_ratio 16.
 */
public final class SweepPlan {
  /** One planned adapter: its resolved settings (for the leaderboard) and its training spec. */
  public record Planned(AdapterSpec spec, Map<String, Object> settings, int replicas) {}

  /** Most adapters one sweep plans: far above a useful sweep, far below a planner OOM. */
  public static final int MAX_ADAPTERS = 10_000;

  /** Methods this build trains ({@link LoraMethod}); any other name is refused, naming these. */
  public static final Set<String> METHODS = Set.of(LoraMethod.keys());

  private SweepPlan() {}

  /**
   * Expands the sweep into adapters.
   *
   * @throws IllegalArgumentException naming the config file, the adapter and the setting for any
   *     invalid value, or when the sweep has no adapter
   */
  public static List<Planned> expand(SweepConfig c) {
    return expand(c, "", List.of());
  }

  /**
   * Expands one stage of a staged sweep: its grid and adapters crossed with {@code parents} (each
   * point once per parent, parent-major), ids prefixed with {@code idPrefix} and, with more than
   * one parent, suffixed {@code -p<k>} for the k-th best parent. Each adapter's settings record its
   * {@code parent} (id) and {@code depth} (the parent's depth + 1; 0 on the bare base).
   *
   * @param parents the previous stage's adapters to train on; empty for the first stage
   * @see #expand(SweepConfig)
   */
  static List<Planned> expand(SweepConfig c, String idPrefix, List<Parent> parents) {
    List<Map<String, Object>> points = points(c);
    List<Parent> under = parents.isEmpty() ? java.util.Collections.singletonList(null) : parents;
    if ((long) points.size() * under.size() > MAX_ADAPTERS) {
      throw tooMany(c);
    }
    try {
      resolve("defaults", c.defaults()); // a bad default is an error even where a grid hides it
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(c.source() + ": defaults: " + e.getMessage(), e);
    }
    List<Planned> out = new ArrayList<>();
    Map<String, AdapterParent> hashed = new HashMap<>(); // each parent directory hashed once
    for (int k = 0; k < under.size(); k++) {
      Parent parent = under.get(k);
      for (int i = 0; i < points.size(); i++) {
        int index = k * points.size() + i;
        String suffix = under.size() > 1 ? "-p" + (k + 1) : "";
        out.add(adapter(c, index, idPrefix, suffix, points.get(i), parent, hashed));
      }
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException(c.source() + ": the sweep has no adapters");
    }
    return out;
  }

  /**
   * A finished adapter of the previous stage that a stage's adapters train on.
   *
   * @param dir its PEFT directory; null to plan without reading it (a check before training)
   * @param depth its own depth (0 on the bare base)
   */
  public record Parent(String id, String dir, int depth) {}

  private static IllegalArgumentException tooMany(SweepConfig c) {
    return new IllegalArgumentException(
        c.source()
            + ": the grid's cross product, adapters list and parents make more than "
            + MAX_ADAPTERS
            + " adapters; split the sweep or shrink the grid");
  }

  /** The grid's points (when it has keys, or when there are no explicit adapters), then those. */
  private static List<Map<String, Object>> points(SweepConfig c) {
    long size = 1;
    for (List<Object> values : c.grid().values()) {
      size = Math.multiplyExact(size, (long) values.size());
      if (size > MAX_ADAPTERS) {
        break;
      }
    }
    if (size + c.adapterSettings().size() > MAX_ADAPTERS) {
      throw tooMany(c);
    }
    List<Map<String, Object>> points = new ArrayList<>();
    if (!c.grid().isEmpty() || c.adapterSettings().isEmpty()) {
      cross(new ArrayList<>(c.grid().entrySet()), 0, new LinkedHashMap<>(), points);
    }
    points.addAll(c.adapterSettings());
    return points;
  }

  /** Adapter {@code index}: defaults ← {@code point}, its id from the point's own settings. */
  private static Planned adapter(
      SweepConfig c,
      int index,
      String idPrefix,
      String suffix,
      Map<String, Object> point,
      Parent parent,
      Map<String, AdapterParent> hashed) {
    Map<String, Object> s = new LinkedHashMap<>(c.defaults());
    s.putAll(point);
    StringBuilder id = new StringBuilder(idPrefix).append(String.format("a%03d", index));
    for (Map.Entry<String, Object> e : point.entrySet()) {
      id.append('-')
          .append(AdapterSettings.find(e.getKey()).map(a -> a.idPrefix()).orElse(e.getKey()))
          .append(compact(e.getValue()));
    }
    String adapterId = id.toString().replaceAll("[^A-Za-z0-9._-]", "_");
    if (adapterId.length() + suffix.length() > 100) {
      adapterId = adapterId.substring(0, 100 - suffix.length());
    }
    adapterId += suffix;
    if (!point.containsKey("seed")) {
      // one root seed (defaults.seed, else 42) → a distinct, reproducible seed per adapter
      long root = s.get("seed") instanceof Number n ? n.longValue() : 42L;
      s.put("seed", derivedSeed(root, index));
    }
    if (parent != null && parent.dir() != null) {
      s.put(AdapterSettings.PARENT.name(), parent.dir());
    }
    Planned p;
    try {
      if (s.get(AdapterSettings.PARENT.name()) instanceof String where) {
        s.put(AdapterSettings.PARENT.name(), hashed.computeIfAbsent(where, AdapterParent::of));
      }
      p = resolve(adapterId, s);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          c.source() + ": adapter " + adapterId + ": " + e.getMessage(), e);
    }
    if (parent != null) {
      p.settings().put(AdapterSettings.PARENT.name(), parent.id());
    }
    int depth = // a parent from outside the sweep counts with its recorded ancestors
        parent != null
            ? parent.depth() + 1
            : p.spec().parent() == null ? 0 : AdapterChain.above(p.spec().parent()).depth();
    p.settings().put("depth", depth);
    return p;
  }

  /**
   * Adapter {@code index}'s seed from the sweep's root seed (SplitMix64 finaliser, kept to 31 bits
   * so it reads well in the leaderboard): adapters get independent inits, data orders and dropout
   * masks, and a rerun of the sweep is bit-identical.
   */
  static long derivedSeed(long root, int index) {
    long z = root + 0x9E3779B97F4A7C15L * (index + 1);
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return (z ^ (z >>> 31)) & 0x7FFFFFFFL;
  }

  /** Product defaults completed with {@code s}: the same defaults as {@code train}'s flags. */
  static Planned resolve(String id, Map<String, Object> s) {
    String method = method(s);
    checkRanges(s);
    int steps = integer(s, AdapterSettings.STEPS);
    LoraConfig lora = loraConfig(s, method, steps);
    TrainConfig train = trainConfig(s, steps);
    int replicas = replicas(s, lora);
    AdapterParent parent = null;
    Object given = s.get(AdapterSettings.PARENT.name());
    if (given != null) { // a location, or the parent expand() already hashed for it
      parent = given instanceof AdapterParent p ? p : AdapterParent.of(String.valueOf(given));
    }
    return new Planned(
        new AdapterSpec(id, lora, train, parent),
        resolvedSettings(s, lora, train, replicas, parent),
        replicas);
  }

  private static String method(Map<String, Object> s) {
    String method = str(s, "method", AdapterSettings.METHOD.defaultValue());
    if (!METHODS.contains(method)) {
      throw new IllegalArgumentException(
          "method '"
              + method
              + "' is not supported; supported: "
              + String.join(", ", LoraMethod.keys()));
    }
    return method;
  }

  /** Each given setting of the table that has a range, read as its type and checked against it. */
  private static void checkRanges(Map<String, Object> s) {
    for (AdapterSettings.Setting<?> setting : AdapterSettings.ALL) {
      if (setting.range() != null && s.containsKey(setting.name())) {
        Object value =
            setting.range().integer()
                ? (Object) integer(s, setting.name(), 0)
                : (Object) number(s, setting.name(), 0);
        setting.check(setting.name(), value);
      }
    }
  }

  private static LoraConfig loraConfig(Map<String, Object> s, String method, int steps) {
    int rank = integer(s, AdapterSettings.RANK);
    LoraConfig lora =
        new LoraConfig(
            rank,
            number(s, "alpha", 2.0 * rank),
            number(s, AdapterSettings.DROPOUT),
            Projection.parseList(str(s, "targets", AdapterSettings.TARGETS.defaultValue())),
            bool(s, "rslora", AdapterSettings.RSLORA.defaultValue()),
            LoraMethod.parse(method));
    io.loraspark.train.lora.DeltaLoraParams delta = deltaLora(s); // type-checked for every method
    if (lora.method() == LoraMethod.DELTA_LORA) { // other methods ignore the delta-lora keys
      lora = lora.withDeltaLora(delta.resolved(steps));
    }
    return lora;
  }

  private static TrainConfig trainConfig(Map<String, Object> s, int steps) {
    return new TrainConfig(
        steps,
        integer(s, AdapterSettings.BATCH_SIZE),
        integer(s, AdapterSettings.GRAD_ACCUM),
        number(s, AdapterSettings.LR),
        number(s, AdapterSettings.LR_RATIO),
        number(s, AdapterSettings.WEIGHT_DECAY),
        integer(s, "warmup_steps", steps / 10),
        LrSchedule.Kind.parse(str(s, "schedule", AdapterSettings.SCHEDULE.defaultValue())),
        number(s, AdapterSettings.MAX_GRAD_NORM),
        integer(s, AdapterSettings.EVAL_EVERY),
        (long) number(s, "seed", AdapterSettings.SEED.defaultValue()));
  }

  /** The replica count; more than one only for methods whose replicas aggregate exactly. */
  private static int replicas(Map<String, Object> s, LoraConfig lora) {
    int replicas = integer(s, AdapterSettings.REPLICAS);
    if (replicas > 1 && lora.method() != LoraMethod.LORA && lora.method() != LoraMethod.LORA_FA) {
      throw new IllegalArgumentException(
          "replicas "
              + replicas
              + " needs method lora or lora-fa; "
              + lora.method().key()
              + " replicas cannot be aggregated exactly (set replicas: 1)");
    }
    return replicas;
  }

  /** The settings the leaderboard and run record show, in their column order. */
  private static Map<String, Object> resolvedSettings(
      Map<String, Object> s,
      LoraConfig lora,
      TrainConfig train,
      int replicas,
      AdapterParent parent) {
    Map<String, Object> resolved = new LinkedHashMap<>();
    resolved.put("method", lora.method().key());
    resolved.put("lora_rank", lora.rank());
    resolved.put("alpha", lora.alpha());
    resolved.put("lr", train.lr());
    resolved.put("lr_ratio", train.lrRatio());
    resolved.put("targets", str(s, "targets", AdapterSettings.TARGETS.defaultValue()));
    resolved.put("steps", train.steps());
    resolved.put("batch_size", train.batchSize());
    resolved.put("seed", train.seed());
    if (lora.deltaLora() != null) {
      resolved.put("delta_update_ratio", lora.deltaLora().updateRatio());
      resolved.put("delta_start_step", lora.deltaLora().startStep());
    }
    resolved.put("replicas", replicas);
    if (parent != null) {
      resolved.put(AdapterSettings.PARENT.name(), parent.location());
    }
    return resolved;
  }

  /** Delta-LoRA's λ and K from {@code delta_update_ratio} and {@code delta_start_step}. */
  private static io.loraspark.train.lora.DeltaLoraParams deltaLora(Map<String, Object> s) {
    Double ratio = s.containsKey("delta_update_ratio") ? number(s, "delta_update_ratio", 0) : null;
    Integer start = s.containsKey("delta_start_step") ? integer(s, "delta_start_step", 0) : null;
    return io.loraspark.train.lora.DeltaLoraParams.of(ratio, start);
  }

  private static void cross(
      List<Map.Entry<String, List<Object>>> keys,
      int i,
      Map<String, Object> current,
      List<Map<String, Object>> out) {
    if (i == keys.size()) {
      out.add(new LinkedHashMap<>(current));
      return;
    }
    for (Object v : keys.get(i).getValue()) {
      current.put(keys.get(i).getKey(), v);
      cross(keys, i + 1, current, out);
    }
    current.remove(keys.get(i).getKey());
  }

  private static String compact(Object v) {
    if (v instanceof Double d) {
      return new BigDecimal(Double.toString(d)).stripTrailingZeros().toString().replace("E", "e");
    }
    return String.valueOf(v).replace(",", "+");
  }

  private static int integer(Map<String, Object> s, AdapterSettings.Setting<Integer> setting) {
    return integer(s, setting.name(), setting.defaultValue());
  }

  private static double number(Map<String, Object> s, AdapterSettings.Setting<Double> setting) {
    return number(s, setting.name(), setting.defaultValue());
  }

  private static String str(Map<String, Object> s, String key, String dflt) {
    Object v = s.get(key);
    return v == null ? dflt : String.valueOf(v);
  }

  private static int integer(Map<String, Object> s, String key, int dflt) {
    Object v = s.get(key);
    if (v == null) {
      return dflt;
    }
    if (v instanceof Long l && l == l.intValue()) {
      return l.intValue();
    }
    throw new IllegalArgumentException(key + " must be an integer but was " + v);
  }

  private static double number(Map<String, Object> s, String key, double dflt) {
    Object v = s.get(key);
    if (v == null) {
      return dflt;
    }
    if (v instanceof Number n) {
      return n.doubleValue();
    }
    if (v instanceof String str) {
      try {
        return Double.parseDouble(str); // YAML 1.1 reads 2e-4 (no dot) as a string
      } catch (NumberFormatException e) {
        // fall through
      }
    }
    throw new IllegalArgumentException(key + " must be a number but was '" + v + "'");
  }

  private static boolean bool(Map<String, Object> s, String key, boolean dflt) {
    Object v = s.get(key);
    if (v == null) {
      return dflt;
    }
    if (v instanceof Boolean b) {
      return b;
    }
    throw new IllegalArgumentException(key + " must be true or false but was " + v);
  }
}
