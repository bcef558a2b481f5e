package io.loraspark.pipeline.sweep;

import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.loop.TrainConfig;
import io.loraspark.train.lora.AdapterChain;
import io.loraspark.train.lora.AdapterParent;
import io.loraspark.train.lora.DeltaLoraParams;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.model.Projection;
import io.loraspark.train.optim.LrSchedule;
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
  /**
   * One planned adapter: its training spec and what the leaderboard and run record show beside it.
   *
   * @param targets the adapted projections as the settings wrote them
   * @param replicas data-parallel copies, combined exactly after training
   * @param parent what the leaderboard shows as the parent: the previous stage's adapter id, the
   *     location of a parent from outside the sweep, or null
   * @param depth the parent's depth + 1; 0 on the bare base
   */
  public record Planned(AdapterSpec spec, String targets, int replicas, String parent, int depth) {
    /** The settings the leaderboard and run.json's {@code settings} show, in their order. */
    public Map<String, Object> settings() {
      LoraConfig lora = spec.lora();
      TrainConfig train = spec.train();
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("method", lora.method().key());
      out.put("lora_rank", lora.rank());
      out.put("alpha", lora.alpha());
      out.put("lr", train.lr());
      out.put("lr_ratio", train.lrRatio());
      out.put("targets", targets);
      out.put("steps", train.steps());
      out.put("batch_size", train.batchSize());
      out.put("seed", train.seed());
      if (lora.deltaLora() != null) {
        out.put("delta_update_ratio", lora.deltaLora().updateRatio());
        out.put("delta_start_step", lora.deltaLora().startStep());
      }
      out.put("replicas", replicas);
      if (parent != null) {
        out.put(AdapterSettings.PARENT.name(), parent);
      }
      out.put("depth", depth);
      return out;
    }
  }

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
   * one parent, suffixed {@code -p<k>} for the k-th best parent. Each adapter records its {@code
   * parent} (id) and {@code depth} (the parent's depth + 1; 0 on the bare base).
   *
   * @param parents the previous stage's adapters to train on; empty for the first stage
   * @see #expand(SweepConfig)
   */
  static List<Planned> expand(SweepConfig c, String idPrefix, List<Parent> parents) {
    List<SettingValues> points = points(c);
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
  private static List<SettingValues> points(SweepConfig c) {
    long size = 1;
    for (SettingValues.Axis axis : c.grid()) {
      size = Math.multiplyExact(size, (long) axis.values().size());
      if (size > MAX_ADAPTERS) {
        break;
      }
    }
    if (size + c.adapterSettings().size() > MAX_ADAPTERS) {
      throw tooMany(c);
    }
    List<SettingValues> points = new ArrayList<>();
    if (!c.grid().isEmpty() || c.adapterSettings().isEmpty()) {
      cross(c.grid(), 0, SettingValues.NONE, points);
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
      SettingValues point,
      Parent parent,
      Map<String, AdapterParent> hashed) {
    SettingValues s = c.defaults().with(point);
    String adapterId = id(idPrefix + String.format("a%03d", index), point, suffix);
    if (!point.has(AdapterSettings.SEED)) {
      // one root seed (defaults.seed, else 42) → a distinct, reproducible seed per adapter
      long seed = derivedSeed(s.orDefault(AdapterSettings.SEED), index);
      s = s.with(new SettingValues.Value<>(AdapterSettings.SEED, seed, String.valueOf(seed)));
    }
    String where =
        parent != null && parent.dir() != null ? parent.dir() : s.get(AdapterSettings.PARENT);
    Planned p;
    try {
      p =
          resolve(
              adapterId,
              s,
              where == null ? null : hashed.computeIfAbsent(where, AdapterParent::of));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          c.source() + ": adapter " + adapterId + ": " + e.getMessage(), e);
    }
    int depth = // a parent from outside the sweep counts with its recorded ancestors
        parent != null
            ? parent.depth() + 1
            : p.spec().parent() == null ? 0 : AdapterChain.above(p.spec().parent()).depth();
    String shown = parent != null ? parent.id() : p.parent();
    return new Planned(p.spec(), p.targets(), p.replicas(), shown, depth);
  }

  /**
   * {@code base}, then each of the point's settings as its id prefix and value, then the suffix.
   */
  private static String id(String base, SettingValues point, String suffix) {
    StringBuilder id = new StringBuilder(base);
    for (SettingValues.Value<?> v : point.values()) {
      id.append('-').append(v.setting().idPrefix()).append(v.idText());
    }
    String adapterId = id.toString().replaceAll("[^A-Za-z0-9._-]", "_");
    if (adapterId.length() + suffix.length() > 100) {
      adapterId = adapterId.substring(0, 100 - suffix.length());
    }
    return adapterId + suffix;
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

  /**
   * Product defaults completed with {@code s}: the same defaults as {@code train}'s flags. A {@code
   * parent} in {@code s} is read (hashed) here.
   */
  static Planned resolve(String id, SettingValues s) {
    String given = s.get(AdapterSettings.PARENT);
    return resolve(id, s, given == null ? null : AdapterParent.of(given));
  }

  private static Planned resolve(String id, SettingValues s, AdapterParent parent) {
    String method = method(s);
    int steps = s.orDefault(AdapterSettings.STEPS);
    LoraConfig lora = loraConfig(s, method, steps);
    TrainConfig train = trainConfig(s, steps);
    int replicas = replicas(s, lora);
    return new Planned(
        new AdapterSpec(id, lora, train, parent),
        s.orDefault(AdapterSettings.TARGETS),
        replicas,
        parent == null ? null : parent.location(),
        0);
  }

  private static String method(SettingValues s) {
    String method = s.orDefault(AdapterSettings.METHOD);
    if (!METHODS.contains(method)) {
      throw new IllegalArgumentException(
          "method '"
              + method
              + "' is not supported; supported: "
              + String.join(", ", LoraMethod.keys()));
    }
    return method;
  }

  private static LoraConfig loraConfig(SettingValues s, String method, int steps) {
    int rank = s.orDefault(AdapterSettings.RANK);
    LoraConfig lora =
        new LoraConfig(
            rank,
            s.get(AdapterSettings.ALPHA, 2.0 * rank),
            s.orDefault(AdapterSettings.DROPOUT),
            Projection.parseList(s.orDefault(AdapterSettings.TARGETS)),
            s.orDefault(AdapterSettings.RSLORA),
            LoraMethod.parse(method));
    DeltaLoraParams delta = // checked for every method
        DeltaLoraParams.of(
            s.get(AdapterSettings.DELTA_UPDATE_RATIO), s.get(AdapterSettings.DELTA_START_STEP));
    if (lora.method() == LoraMethod.DELTA_LORA) { // other methods ignore the delta-lora keys
      lora = lora.withDeltaLora(delta.resolved(steps));
    }
    return lora;
  }

  private static TrainConfig trainConfig(SettingValues s, int steps) {
    return new TrainConfig(
        steps,
        s.orDefault(AdapterSettings.BATCH_SIZE),
        s.orDefault(AdapterSettings.GRAD_ACCUM),
        s.orDefault(AdapterSettings.LR),
        s.orDefault(AdapterSettings.LR_RATIO),
        s.orDefault(AdapterSettings.WEIGHT_DECAY),
        s.get(AdapterSettings.WARMUP_STEPS, steps / 10),
        LrSchedule.Kind.parse(s.orDefault(AdapterSettings.SCHEDULE)),
        s.orDefault(AdapterSettings.MAX_GRAD_NORM),
        s.orDefault(AdapterSettings.EVAL_EVERY),
        s.orDefault(AdapterSettings.SEED));
  }

  /** The replica count; more than one only for methods whose replicas aggregate exactly. */
  private static int replicas(SettingValues s, LoraConfig lora) {
    int replicas = s.orDefault(AdapterSettings.REPLICAS);
    if (replicas > 1 && lora.method().variant().ownsBranch()) { // as ReplicaAggregation checks
      throw new IllegalArgumentException(
          "replicas "
              + replicas
              + " needs method lora or lora-fa; "
              + lora.method().key()
              + " replicas cannot be aggregated exactly (set replicas: 1)");
    }
    return replicas;
  }

  /** Every point of the grid from axis {@code i} on, {@code current} holding the axes before. */
  private static void cross(
      List<SettingValues.Axis> axes, int i, SettingValues current, List<SettingValues> out) {
    if (i == axes.size()) {
      out.add(current);
      return;
    }
    for (SettingValues.Value<?> v : axes.get(i).values()) {
      cross(axes, i + 1, current.with(v), out);
    }
  }
}
