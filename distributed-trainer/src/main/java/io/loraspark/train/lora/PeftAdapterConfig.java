package io.loraspark.train.lora;

import com.fasterxml.jackson.databind.JsonNode;
import io.loraspark.train.model.Projection;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
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

  /** The codec of each peft_type this engine reads. */
  private static final Map<String, PeftCodec> CODECS =
      Map.of(
          PEFT_TYPE, LoraCodec.INSTANCE,
          DELTA_LORA_TYPE, LoraCodec.INSTANCE,
          VERA_TYPE, VeraCodec.INSTANCE,
          ADALORA_TYPE, AdaLoraCodec.INSTANCE);

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
          new Fixed("fan_in_fan_out", "false", n -> n.isNull() || PeftJson.isFalse(n)),
          new Fixed("lora_bias", "false", n -> n.isNull() || PeftJson.isFalse(n)),
          new Fixed("bias", "\"none\"", n -> n.isNull() || "none".equals(n.textValue())),
          new Fixed("layer_replication", "null", JsonNode::isNull),
          new Fixed("modules_to_save", "null or []", n -> n.isNull() || PeftJson.isEmptyArray(n)),
          new Fixed("trainable_token_indices", "null", JsonNode::isNull),
          new Fixed("target_parameters", "null or []", n -> n.isNull() || PeftJson.isEmptyArray(n)),
          new Fixed("alora_invocation_tokens", "null", JsonNode::isNull),
          new Fixed("use_qalora", "false", n -> n.isNull() || PeftJson.isFalse(n)),
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
    PeftCodec codec = CODECS.get(config.method().variant().peftType());
    return PeftJson.render(codec.render(config, baseModel, allocator), codec.keepOrder());
  }

  /** PEFT's module name for a projection: {@code q_proj}, ..., {@code down_proj}. */
  static String moduleName(Projection p) {
    return p.shortName() + "_proj";
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
    return parse(file, PeftJson.readObject(file));
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
    return CODECS.get(type).parse(file, root);
  }

  /**
   * Reads an AdaLoRA config's total_step and rank_pattern into {@code w}'s allocator, checking that
   * the pattern names exactly the adapter's modules.
   */
  static void readRankState(Path file, LoraWeights w) {
    AdaLoraCodec.readRankState(file, w);
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
    if (!CODECS.containsKey(t.textValue())) {
      throw bad(file, "peft_type", "is " + t + "; supported: " + valid);
    }
    return t.textValue();
  }

  static IllegalArgumentException bad(Path file, String key, String what) {
    return new IllegalArgumentException(file + ": " + key + " " + what);
  }
}
