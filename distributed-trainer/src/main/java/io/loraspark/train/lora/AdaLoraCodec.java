package io.loraspark.train.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

/**
 * {@code peft_type} ADALORA (PEFT's AdaLoraConfig), with the training state (total_step and the
 * kept ranks in rank_pattern) that PEFT keeps in the config.
 */
final class AdaLoraCodec implements PeftCodec {
  static final AdaLoraCodec INSTANCE = new AdaLoraCodec();

  private AdaLoraCodec() {}

  @Override
  public ObjectNode render(LoraConfig config, String baseModel, RankAllocator allocator) {
    return adaLora(config, baseModel, allocator);
  }

  @Override
  public LoraConfig parse(Path file, JsonNode root) {
    return parseAdaLora(file, root);
  }

  /** Its rank_pattern is a map of kept flags, not a first-match pattern list: sorted as usual. */
  @Override
  public Set<String> keepOrder() {
    return Set.of();
  }

  /**
   * PEFT's AdaLoraConfig: LoraConfig's keys ({@code r} at LoraConfig's default 8, which AdaLoRA
   * ignores) plus init_r, target_r, the schedule, total_step and rank_pattern ({@code
   * "<module>.lora_E": [kept, ...]}, PEFT's key with the adapter name stripped).
   */
  private static ObjectNode adaLora(LoraConfig config, String baseModel, RankAllocator allocator) {
    ObjectNode n = LoraCodec.lora(config, baseModel);
    RankAllocator.Schedule sch =
        allocator == null ? RankAllocator.Schedule.PEFT_DEFAULTS : allocator.schedule();
    n.put("peft_type", PeftAdapterConfig.ADALORA_TYPE);
    n.put("r", 8);
    n.put("init_r", AdaLoraVariant.initRank(config.rank()));
    n.put("target_r", config.rank());
    n.put("tinit", sch.tinit());
    n.put("tfinal", sch.tfinal());
    n.put("deltaT", sch.deltaT());
    n.put("beta1", sch.beta1());
    n.put("beta2", sch.beta2());
    n.put("orth_reg_weight", AdaLoraVariant.ORTH_REG_WEIGHT);
    if (allocator == null || allocator.totalSteps() <= 0) {
      n.putNull("total_step");
    } else {
      n.put("total_step", allocator.totalSteps());
    }
    if (allocator == null || allocator.rankPattern() == null) {
      n.putNull("rank_pattern");
    } else {
      ObjectNode p = n.putObject("rank_pattern");
      for (Map.Entry<String, boolean[]> e : allocator.rankPattern().entrySet()) {
        ArrayNode kept = p.putArray(e.getKey() + "." + AdaLoraState.E);
        for (boolean k : e.getValue()) {
          kept.add(k);
        }
      }
    }
    return n;
  }

  /**
   * An AdaLoraConfig: target_r is the adapter's rank (PEFT's default 8 when absent) and init_r must
   * be this engine's {@code ⌈1.5 · target_r⌉} (PEFT's default 12 when absent); use_rslora is
   * ignored, as PEFT's AdaLoRA layer ignores it.
   */
  private static LoraConfig parseAdaLora(Path file, JsonNode root) {
    int target = PeftJson.intOr(file, root, "target_r", 8);
    int init = PeftJson.intOr(file, root, "init_r", 12);
    if (init != AdaLoraVariant.initRank(target)) {
      throw PeftAdapterConfig.bad(
          file,
          "init_r",
          "is "
              + init
              + " with target_r "
              + target
              + "; this engine trains AdaLoRA with init_r = ceil(1.5 * target_r) = "
              + AdaLoraVariant.initRank(target));
    }
    if (PeftJson.bool(file, root, "use_dora")) {
      throw PeftAdapterConfig.bad(file, "use_dora", "is true; AdaLoRA does not support DoRA");
    }
    double alpha = PeftJson.positiveNumber(file, root, "lora_alpha");
    double dropout = PeftJson.dropout(file, root, "lora_dropout");
    PeftModuleKeys.Parsed t = PeftModuleKeys.parse(file, root, false, true);
    return new LoraConfig(
        target, alpha, dropout, t.targets(), false, LoraMethod.ADALORA, t.selection());
  }

  /**
   * Reads an AdaLoRA config's total_step and rank_pattern into {@code w}'s allocator, checking that
   * the pattern names exactly the adapter's modules ({@code <module>.lora_E}, optionally followed
   * by the adapter name) with init_r booleans each.
   */
  static void readRankState(Path file, LoraWeights w) {
    JsonNode root;
    try {
      root = PeftJson.READER.readTree(file.toFile());
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": cannot read: " + e, e);
    }
    JsonNode total = root.get("total_step");
    if (total != null && !total.isNull()) {
      if (!total.isIntegralNumber() || !total.canConvertToInt() || total.intValue() < 1) {
        throw PeftAdapterConfig.bad(
            file, "total_step", "is " + total + "; expected an integer >= 1 or null");
      }
      w.allocator().totalSteps(total.intValue());
    }
    JsonNode p = root.get("rank_pattern");
    if (p == null || p.isNull()) {
      w.allocator().rankPattern(null);
      return;
    }
    if (!p.isObject()) {
      throw PeftAdapterConfig.bad(file, "rank_pattern", "is " + p + "; expected an object or null");
    }
    Map<String, boolean[]> pattern = new java.util.LinkedHashMap<>();
    String suffix = "." + AdaLoraState.E;
    String named = suffix + "." + PeftAdapter.DEFAULT_ADAPTER;
    for (Map.Entry<String, JsonNode> e : (Iterable<Map.Entry<String, JsonNode>>) p::fields) {
      String key = e.getKey();
      String module =
          key.endsWith(named)
              ? key.substring(0, key.length() - named.length())
              : key.endsWith(suffix) ? key.substring(0, key.length() - suffix.length()) : key;
      pattern.put(module, kept(file, key, e.getValue()));
    }
    for (LoraWeights.Module m : w.modules()) {
      boolean[] kept = pattern.get(m.name());
      if (kept == null || kept.length != m.a().rows()) {
        throw PeftAdapterConfig.bad(
            file,
            "rank_pattern",
            (kept == null ? "has no entry" : "has " + kept.length + " entries")
                + " for "
                + m.name()
                + suffix
                + "; expected init_r = "
                + m.a().rows()
                + " booleans for every adapted module");
      }
    }
    if (pattern.size() != w.modules().size()) {
      throw PeftAdapterConfig.bad(
          file,
          "rank_pattern",
          "names " + pattern.size() + " modules but the adapter has " + w.modules().size());
    }
    w.allocator().rankPattern(pattern);
  }

  private static boolean[] kept(Path file, String key, JsonNode v) {
    if (!v.isArray()) {
      throw PeftAdapterConfig.bad(
          file, "rank_pattern", "entry " + key + " is " + v + "; expected a list of booleans");
    }
    boolean[] out = new boolean[v.size()];
    for (int i = 0; i < out.length; i++) {
      if (!v.get(i).isBoolean()) {
        throw PeftAdapterConfig.bad(
            file, "rank_pattern", "entry " + key + " holds " + v.get(i) + "; expected booleans");
      }
      out[i] = v.get(i).booleanValue();
    }
    return out;
  }
}
