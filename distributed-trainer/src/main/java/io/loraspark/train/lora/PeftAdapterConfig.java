package io.loraspark.train.lora;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.SerializableString;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.io.CharacterEscapes;
import com.fasterxml.jackson.core.io.SerializedString;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.model.Projection;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * {@code adapter_config.json} of a PEFT LoRA adapter: rendered as PEFT 0.13+ writes it ({@code
 * json.dumps(config, indent=2, sort_keys=True)}) and parsed strictly, as PEFT 0.19 reads it.
 * Options that change the adapter's math and that this engine does not implement are refused,
 * naming the key; keys that do not change it (peft_version, the init-only eva/corda/lora_ga/loftq
 * configs, megatron_*, qalora_group_size, ensure_weight_tying, ...) and unknown keys are ignored.
 * Which modules carry the adapter and with which rank and alpha (target_modules as a list, a regex
 * or "all-linear", exclude_modules, layers_to_transform, layers_pattern, rank_pattern,
 * alpha_pattern) is read by {@link PeftModuleKeys}. {@code "use_dora": true} selects {@link
 * LoraMethod#DORA}; {@code "peft_type": "VERA"} (PEFT's VeraConfig) {@link LoraMethod#VERA} and
 * {@code "ADALORA"} (AdaLoraConfig) {@link LoraMethod#ADALORA}.
 */
final class PeftAdapterConfig {

  /** The file name inside an adapter directory. */
  static final String FILE = "adapter_config.json";

  /** The {@code peft_type} of LoRA, LoRA-FA, DoRA and PiSSA adapters. */
  static final String PEFT_TYPE = "LORA";

  /**
   * The {@code peft_type} of a Delta-LoRA adapter, which PEFT has no format for: PEFT refuses it
   * rather than load A and B without ΔW as a plain LoRA.
   */
  static final String DELTA_LORA_TYPE = "DELTA_LORA";

  /** The λ of a Delta-LoRA checkpoint's state (absent from earlier versions' dense adapters). */
  static final String DELTA_UPDATE_RATIO = "delta_update_ratio";

  /** The K of a Delta-LoRA checkpoint's state (null: min(500, steps / 10)). */
  static final String DELTA_START_STEP = "delta_start_step";

  /** The {@code peft_type} of VeRA adapters. */
  static final String VERA_TYPE = "VERA";

  /** The {@code peft_type} of AdaLoRA adapters. */
  static final String ADALORA_TYPE = "ADALORA";

  private static final ObjectMapper READER =
      JsonMapper.builder(
              JsonFactory.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build())
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build();

  private static final ObjectMapper WRITER = new ObjectMapper();

  /**
   * An option this engine supports only at its neutral value.
   *
   * @param key the adapter_config.json key
   * @param valid what is accepted, for the message
   * @param ok whether a present value is acceptable (absent keys always are)
   */
  private record Fixed(String key, String valid, Predicate<JsonNode> ok) {}

  private static final List<Fixed> FIXED =
      List.of(
          new Fixed("fan_in_fan_out", "false", n -> n.isNull() || isFalse(n)),
          new Fixed("lora_bias", "false", n -> n.isNull() || isFalse(n)),
          new Fixed("bias", "\"none\"", n -> n.isNull() || "none".equals(n.textValue())),
          new Fixed("layer_replication", "null", JsonNode::isNull),
          new Fixed("modules_to_save", "null or []", n -> n.isNull() || isEmptyArray(n)),
          new Fixed("trainable_token_indices", "null", JsonNode::isNull),
          new Fixed("target_parameters", "null or []", n -> n.isNull() || isEmptyArray(n)),
          new Fixed("alora_invocation_tokens", "null", JsonNode::isNull),
          new Fixed("use_qalora", "false", n -> n.isNull() || isFalse(n)),
          new Fixed("use_bdlora", "null", JsonNode::isNull),
          new Fixed("arrow_config", "null", JsonNode::isNull),
          new Fixed(
              "init_lora_weights",
              "true, false, \"gaussian\", \"eva\" or \"orthogonal\" (PEFT rewrites the base"
                  + " weights when it loads a pissa, olora, corda, lora_ga or loftq adapter;"
                  + " convert it to plain LoRA with save_pretrained("
                  + "path_initial_model_for_weight_conversion=...))",
              PeftAdapterConfig::neutralInit));

  /** The init_lora_weights values after which the saved A and B alone define the adapter. */
  private static final List<String> NEUTRAL_INITS = List.of("gaussian", "eva", "orthogonal");

  private static boolean neutralInit(JsonNode n) {
    return n.isNull() || n.isBoolean() || (n.isTextual() && NEUTRAL_INITS.contains(n.textValue()));
  }

  private PeftAdapterConfig() {}

  /**
   * The file's text for {@code config}: every key PEFT 0.13 writes for a LoRA adapter on a causal
   * LM, sorted, two-space indented, {@code ": "} and {@code ","} separators, no trailing newline.
   * {@code target_modules} is sorted by name; an integral lora_alpha is written as an integer.
   *
   * @param baseModel base_model_name_or_path; null writes JSON null
   */
  static String render(LoraConfig config, String baseModel) {
    return render(config, baseModel, null);
  }

  /**
   * The config file of adapter {@code w} as its method saves it ({@link LoraVariant#exportConfig}).
   */
  static String render(LoraWeights w, String baseModel) {
    return render(w.variant().exportConfig(w.config()), baseModel, w.allocator());
  }

  /**
   * The config file of adapter {@code w}'s training state as a checkpoint saves it ({@link
   * LoraVariant#stateConfig}).
   */
  static String renderState(LoraWeights w) {
    return render(w.variant().stateConfig(w.config()), null, w.allocator());
  }

  /**
   * @param allocator AdaLoRA's allocator, whose rank pattern and total step are written; null for
   *     other methods (and for an AdaLoRA config without training state: both written as null)
   */
  private static String render(LoraConfig config, String baseModel, RankAllocator allocator) {
    ObjectNode n =
        switch (config.method()) {
          case VERA -> vera(config, baseModel);
          case ADALORA -> adaLora(config, baseModel, allocator);
          default -> lora(config, baseModel);
        };
    Set<String> keepOrder = // first match wins: a pattern's order is its meaning
        config.method() == LoraMethod.ADALORA ? Set.of() : Set.of("rank_pattern", "alpha_pattern");
    try {
      return WRITER
          .writer(pythonStyle())
          .with(new PythonEscapes())
          .writeValueAsString(sorted(n, keepOrder));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot render " + FILE + ": " + e.getOriginalMessage(), e);
    }
  }

  private static ObjectNode lora(LoraConfig config, String baseModel) {
    ObjectNode n = WRITER.createObjectNode();
    n.putNull("auto_mapping");
    n.put("base_model_name_or_path", baseModel);
    n.put("bias", "none");
    n.put("fan_in_fan_out", false);
    n.put("inference_mode", true);
    n.put("init_lora_weights", true);
    n.putNull("layer_replication");
    n.set("loftq_config", n.objectNode());
    PeftModuleKeys.putNumber(n, "lora_alpha", config.alpha());
    n.put("lora_dropout", config.dropout());
    n.putNull("megatron_config");
    n.put("megatron_core", "megatron.core");
    n.putNull("modules_to_save");
    n.put("peft_type", config.method() == LoraMethod.DELTA_LORA ? DELTA_LORA_TYPE : PEFT_TYPE);
    DeltaLoraParams delta = config.deltaLora();
    if (delta != null && !delta.dense()) { // a checkpoint's Delta-LoRA state
      n.put(DELTA_UPDATE_RATIO, delta.updateRatio());
      if (delta.startStep() == DeltaLoraParams.AUTO) {
        n.putNull(DELTA_START_STEP);
      } else {
        n.put(DELTA_START_STEP, delta.startStep());
      }
    }
    n.put("r", config.rank());
    n.putNull("revision");
    PeftModuleKeys.render(n, config, true);
    n.put("task_type", "CAUSAL_LM");
    n.put("use_dora", config.method() == LoraMethod.DORA);
    n.put("use_rslora", config.rsLora());
    return n;
  }

  /**
   * PEFT's AdaLoraConfig: LoraConfig's keys ({@code r} at LoraConfig's default 8, which AdaLoRA
   * ignores) plus init_r, target_r, the schedule, total_step and rank_pattern ({@code
   * "<module>.lora_E": [kept, ...]}, PEFT's key with the adapter name stripped).
   */
  private static ObjectNode adaLora(LoraConfig config, String baseModel, RankAllocator allocator) {
    ObjectNode n = lora(config, baseModel);
    RankAllocator.Schedule sch =
        allocator == null ? RankAllocator.Schedule.PEFT_DEFAULTS : allocator.schedule();
    n.put("peft_type", ADALORA_TYPE);
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
        ArrayNode kept = p.putArray(e.getKey() + "." + AdaLoraVariant.E);
        for (boolean k : e.getValue()) {
          kept.add(k);
        }
      }
    }
    return n;
  }

  /** PEFT's VeraConfig, with the projections always saved ({@code save_projection: true}). */
  private static ObjectNode vera(LoraConfig config, String baseModel) {
    ObjectNode n = WRITER.createObjectNode();
    n.putNull("auto_mapping");
    n.put("base_model_name_or_path", baseModel);
    n.put("bias", "none");
    n.put("d_initial", VeraVariant.D_INITIAL);
    n.put("fan_in_fan_out", false);
    n.put("inference_mode", true);
    n.put("init_weights", true);
    n.putNull("modules_to_save");
    n.put("peft_type", VERA_TYPE);
    n.put("projection_prng_key", 0);
    n.put("r", config.rank());
    n.putNull("revision");
    n.put("save_projection", true);
    PeftModuleKeys.render(n, config, false);
    n.put("task_type", "CAUSAL_LM");
    n.put("vera_dropout", config.dropout());
    return n;
  }

  /**
   * {@code n} with the keys of every object sorted, as Python's {@code sort_keys=True}, except
   * inside the top-level values named in {@code keepOrder}.
   */
  private static JsonNode sorted(JsonNode n, Set<String> keepOrder) {
    if (n.isObject()) {
      ObjectNode out = WRITER.createObjectNode();
      List<String> names = new ArrayList<>();
      n.fieldNames().forEachRemaining(names::add);
      names.sort(null);
      for (String k : names) {
        out.set(k, keepOrder.contains(k) ? n.get(k) : sorted(n.get(k), Set.of()));
      }
      return out;
    }
    return n;
  }

  /** PEFT's module name for a projection: {@code q_proj}, ..., {@code down_proj}. */
  static String moduleName(Projection p) {
    return p.shortName() + "_proj";
  }

  private static DefaultPrettyPrinter pythonStyle() {
    Separators seps =
        Separators.createDefaultInstance()
            .withObjectFieldValueSpacing(Separators.Spacing.AFTER)
            .withObjectEntrySpacing(Separators.Spacing.NONE)
            .withArrayValueSpacing(Separators.Spacing.NONE)
            .withObjectEmptySeparator("")
            .withArrayEmptySeparator("");
    DefaultIndenter indent = new DefaultIndenter("  ", "\n");
    DefaultPrettyPrinter p = new DefaultPrettyPrinter(seps);
    p.indentObjectsWith(indent);
    p.indentArraysWith(indent);
    return p;
  }

  /**
   * Python's {@code json.dumps(ensure_ascii=True)} escaping: every character outside space..~ that
   * has no short form becomes a backslash, {@code u} and four lowercase hex digits (per UTF-16
   * unit, so surrogate pairs stay pairs).
   */
  private static final class PythonEscapes extends CharacterEscapes {
    private final int[] ascii = standardAsciiEscapesForJSON();

    PythonEscapes() {
      for (int c = 0; c < 0x20; c++) {
        if (ascii[c] == ESCAPE_STANDARD) {
          ascii[c] = ESCAPE_CUSTOM;
        }
      }
      ascii[0x7f] = ESCAPE_CUSTOM;
    }

    @Override
    public int[] getEscapeCodesForAscii() {
      return ascii;
    }

    @Override
    public SerializableString getEscapeSequence(int ch) {
      return new SerializedString(String.format("\\u%04x", ch));
    }
  }

  /**
   * Reads and validates {@code file}.
   *
   * @throws IllegalArgumentException with a one-line message naming the file and key when the file
   *     is missing, not a JSON object, not a LoRA adapter, out of range, or uses an option this
   *     engine does not implement
   * @throws UncheckedIOException naming the file if it cannot be read
   */
  static LoraConfig read(Path file) {
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException(
          file
              + " is missing; a PEFT LoRA adapter directory holds "
              + FILE
              + " and "
              + PeftAdapter.WEIGHTS_FILE);
    }
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": cannot read: " + e, e);
    }
    JsonNode root;
    try {
      root = READER.readTree(bytes);
    } catch (IOException e) {
      String where =
          e instanceof JsonProcessingException j && j.getLocation() != null
              ? " at line "
                  + j.getLocation().getLineNr()
                  + ", column "
                  + j.getLocation().getColumnNr()
              : "";
      String msg = e instanceof JsonProcessingException j ? j.getOriginalMessage() : e.toString();
      throw new IllegalArgumentException(
          file + " is not valid JSON" + where + ": " + firstLine(msg), e);
    }
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException(file + " must hold a JSON object");
    }
    return parse(file, root);
  }

  /** Validates a parsed config; {@code file} is named in messages. */
  static LoraConfig parse(Path file, JsonNode root) {
    String type = peftType(file, root);
    JsonNode task = root.get("task_type");
    if (task != null && !task.isNull() && !"CAUSAL_LM".equals(task.textValue())) {
      throw bad(file, "task_type", "is " + task + "; only \"CAUSAL_LM\" (or null) is supported");
    }
    for (Fixed f : FIXED) {
      JsonNode v = root.get(f.key());
      if (v != null && !f.ok().test(v)) {
        throw bad(
            file, f.key(), "is " + v + ", which this engine does not support; valid: " + f.valid());
      }
    }
    if (type.equals(VERA_TYPE)) {
      return parseVera(file, root);
    }
    if (type.equals(ADALORA_TYPE)) {
      return parseAdaLora(file, root);
    }
    int rank = rank(file, root);
    double alpha = positiveNumber(file, root, "lora_alpha");
    double dropout = dropout(file, root, "lora_dropout");
    boolean rsLora = bool(file, root, "use_rslora");
    LoraMethod method = bool(file, root, "use_dora") ? LoraMethod.DORA : LoraMethod.LORA;
    DeltaLoraParams delta = null;
    if (DELTA_LORA_TYPE.equals(root.get("peft_type").textValue())) {
      method = LoraMethod.DELTA_LORA;
      delta = deltaLora(file, root);
    }
    PeftModuleKeys.Parsed t = PeftModuleKeys.parse(file, root, true, false);
    return new LoraConfig(rank, alpha, dropout, t.targets(), rsLora, method, t.selection(), delta);
  }

  /**
   * A DELTA_LORA file's λ and K: a checkpoint's low-rank state when it names delta_update_ratio,
   * else an earlier version's adapter with its dense ΔW.
   */
  private static DeltaLoraParams deltaLora(Path file, JsonNode root) {
    JsonNode ratio = root.get(DELTA_UPDATE_RATIO);
    if (ratio == null) {
      return DeltaLoraParams.DENSE;
    }
    JsonNode k = root.get(DELTA_START_STEP);
    if (!ratio.isNumber()) {
      throw bad(file, DELTA_UPDATE_RATIO, "is " + ratio + "; expected a number >= 0");
    }
    if (k != null && !k.isNull() && !(k.isIntegralNumber() && k.canConvertToInt())) {
      throw bad(file, DELTA_START_STEP, "is " + k + "; expected an integer >= 0 or null");
    }
    try {
      return new DeltaLoraParams(
          ratio.doubleValue(),
          k == null || k.isNull() ? DeltaLoraParams.AUTO : k.intValue(),
          false);
    } catch (IllegalArgumentException e) {
      throw bad(file, DELTA_UPDATE_RATIO, e.getMessage());
    }
  }

  /**
   * A VeraConfig: r, target_modules and vera_dropout shape the adapter; d_initial and
   * projection_prng_key only seed a fresh one; save_projection must not be false, since PEFT then
   * regenerates vera_A/vera_B with torch's generator, which this engine cannot reproduce.
   */
  private static LoraConfig parseVera(Path file, JsonNode root) {
    JsonNode save = root.get("save_projection");
    if (save != null && !save.isNull() && !(save.isBoolean() && save.booleanValue())) {
      throw bad(
          file,
          "save_projection",
          "is "
              + save
              + "; the adapter must hold vera_A and vera_B (torch's generator behind"
              + " projection_prng_key cannot be reproduced here); re-save with"
              + " save_projection=True");
    }
    int rank = rank(file, root);
    double dropout = dropout(file, root, "vera_dropout");
    PeftModuleKeys.Parsed t = PeftModuleKeys.parse(file, root, false, false);
    return new LoraConfig(rank, rank, dropout, t.targets(), false, LoraMethod.VERA, t.selection());
  }

  /**
   * An AdaLoraConfig: target_r is the adapter's rank (PEFT's default 8 when absent) and init_r must
   * be this engine's {@code ⌈1.5 · target_r⌉} (PEFT's default 12 when absent); use_rslora is
   * ignored, as PEFT's AdaLoRA layer ignores it.
   */
  private static LoraConfig parseAdaLora(Path file, JsonNode root) {
    int target = intOr(file, root, "target_r", 8);
    int init = intOr(file, root, "init_r", 12);
    if (init != AdaLoraVariant.initRank(target)) {
      throw bad(
          file,
          "init_r",
          "is "
              + init
              + " with target_r "
              + target
              + "; this engine trains AdaLoRA with init_r = ceil(1.5 * target_r) = "
              + AdaLoraVariant.initRank(target));
    }
    if (bool(file, root, "use_dora")) {
      throw bad(file, "use_dora", "is true; AdaLoRA does not support DoRA");
    }
    double alpha = positiveNumber(file, root, "lora_alpha");
    double dropout = dropout(file, root, "lora_dropout");
    PeftModuleKeys.Parsed t = PeftModuleKeys.parse(file, root, false, true);
    return new LoraConfig(
        target, alpha, dropout, t.targets(), false, LoraMethod.ADALORA, t.selection());
  }

  private static int intOr(Path file, JsonNode root, String key, int dflt) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isIntegralNumber() || !v.canConvertToInt() || v.intValue() < 1) {
      throw bad(file, key, "is " + v + "; expected an integer >= 1");
    }
    return v.intValue();
  }

  /**
   * Reads an AdaLoRA config's total_step and rank_pattern into {@code w}'s allocator, checking that
   * the pattern names exactly the adapter's modules ({@code <module>.lora_E}, optionally followed
   * by the adapter name) with init_r booleans each.
   */
  static void readRankState(Path file, LoraWeights w) {
    JsonNode root;
    try {
      root = READER.readTree(file.toFile());
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": cannot read: " + e, e);
    }
    JsonNode total = root.get("total_step");
    if (total != null && !total.isNull()) {
      if (!total.isIntegralNumber() || !total.canConvertToInt() || total.intValue() < 1) {
        throw bad(file, "total_step", "is " + total + "; expected an integer >= 1 or null");
      }
      w.allocator().totalSteps(total.intValue());
    }
    JsonNode p = root.get("rank_pattern");
    if (p == null || p.isNull()) {
      w.allocator().rankPattern(null);
      return;
    }
    if (!p.isObject()) {
      throw bad(file, "rank_pattern", "is " + p + "; expected an object or null");
    }
    Map<String, boolean[]> pattern = new java.util.LinkedHashMap<>();
    String suffix = "." + AdaLoraVariant.E;
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
        throw bad(
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
      throw bad(
          file,
          "rank_pattern",
          "names " + pattern.size() + " modules but the adapter has " + w.modules().size());
    }
    w.allocator().rankPattern(pattern);
  }

  private static boolean[] kept(Path file, String key, JsonNode v) {
    if (!v.isArray()) {
      throw bad(
          file, "rank_pattern", "entry " + key + " is " + v + "; expected a list of booleans");
    }
    boolean[] out = new boolean[v.size()];
    for (int i = 0; i < out.length; i++) {
      if (!v.get(i).isBoolean()) {
        throw bad(
            file, "rank_pattern", "entry " + key + " holds " + v.get(i) + "; expected booleans");
      }
      out[i] = v.get(i).booleanValue();
    }
    return out;
  }

  private static String peftType(Path file, JsonNode root) {
    JsonNode t = root.get("peft_type");
    String valid =
        "\""
            + PEFT_TYPE
            + "\", \""
            + VERA_TYPE
            + "\", \""
            + ADALORA_TYPE
            + "\" or lora-spark's \""
            + DELTA_LORA_TYPE
            + "\"";
    if (t == null || t.isNull()) {
      throw bad(file, "peft_type", "is missing; expected " + valid);
    }
    String v = t.textValue();
    if (!PEFT_TYPE.equals(v)
        && !VERA_TYPE.equals(v)
        && !ADALORA_TYPE.equals(v)
        && !DELTA_LORA_TYPE.equals(v)) {
      throw bad(file, "peft_type", "is " + t + "; supported: " + valid);
    }
    return v;
  }

  private static int rank(Path file, JsonNode root) {
    JsonNode r = root.get("r");
    if (r == null || r.isNull()) {
      throw bad(file, "r", "is missing; expected the LoRA rank, an integer >= 1");
    }
    if (!r.isIntegralNumber() || !r.canConvertToInt() || r.intValue() < 1) {
      throw bad(file, "r", "is " + r + "; expected an integer >= 1");
    }
    return r.intValue();
  }

  private static double positiveNumber(Path file, JsonNode root, String key) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      throw bad(file, key, "is missing; expected a number > 0");
    }
    if (!v.isNumber() || !(v.doubleValue() > 0) || !Double.isFinite(v.doubleValue())) {
      throw bad(file, key, "is " + v + "; expected a finite number > 0");
    }
    return v.doubleValue();
  }

  private static double dropout(Path file, JsonNode root, String key) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return 0.0;
    }
    if (!v.isNumber() || !(v.doubleValue() >= 0 && v.doubleValue() < 1)) {
      throw bad(file, key, "is " + v + "; expected a number in [0, 1)");
    }
    return v.doubleValue();
  }

  private static boolean bool(Path file, JsonNode root, String key) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return false;
    }
    if (!v.isBoolean()) {
      throw bad(file, key, "is " + v + "; expected true or false");
    }
    return v.booleanValue();
  }

  private static boolean isFalse(JsonNode n) {
    return n.isBoolean() && !n.booleanValue();
  }

  private static boolean isEmptyArray(JsonNode n) {
    return n.isArray() && n.isEmpty();
  }

  static IllegalArgumentException bad(Path file, String key, String what) {
    return new IllegalArgumentException(file + ": " + key + " " + what);
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }
}
