package io.loraspark.train.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;

/**
 * {@code peft_type} LORA (PEFT's LoraConfig): LoRA, LoRA-FA, PiSSA and Delta-LoRA's rank-2r export
 * as saved, DoRA with {@code use_dora}; also lora-spark's DELTA_LORA (a checkpoint's low-rank
 * Delta-LoRA state with λ and K, or an earlier version's adapter with its dense ΔW), which PEFT
 * refuses rather than load A and B without the rest.
 */
final class LoraCodec implements PeftCodec {
  static final LoraCodec INSTANCE = new LoraCodec();

  private LoraCodec() {}

  @Override
  public ObjectNode render(LoraConfig config, String baseModel, RankAllocator allocator) {
    return lora(config, baseModel);
  }

  @Override
  public LoraConfig parse(Path file, JsonNode root) {
    int rank = PeftJson.rank(file, root);
    double alpha = PeftJson.positiveNumber(file, root, "lora_alpha");
    double dropout = PeftJson.dropout(file, root, "lora_dropout");
    boolean rsLora = PeftJson.bool(file, root, "use_rslora");
    LoraMethod method = PeftJson.bool(file, root, "use_dora") ? LoraMethod.DORA : LoraMethod.LORA;
    DeltaLoraParams delta = null;
    if (PeftAdapterConfig.DELTA_LORA_TYPE.equals(root.get("peft_type").textValue())) {
      method = LoraMethod.DELTA_LORA;
      delta = deltaLora(file, root);
    }
    PeftModuleKeys.Parsed t = PeftModuleKeys.parse(file, root, true, false);
    return new LoraConfig(rank, alpha, dropout, t.targets(), rsLora, method, t.selection(), delta);
  }

  /** LoraConfig's keys as PEFT 0.13 writes them for a causal LM (AdaLoRA starts from these). */
  static ObjectNode lora(LoraConfig config, String baseModel) {
    ObjectNode n = PeftJson.WRITER.createObjectNode();
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
    n.put("peft_type", config.method().variant().peftType());
    DeltaLoraParams delta = config.deltaLora();
    if (delta != null && !delta.dense()) { // a checkpoint's Delta-LoRA state
      n.put(PeftAdapterConfig.DELTA_UPDATE_RATIO, delta.updateRatio());
      if (delta.startStep() == DeltaLoraParams.AUTO) {
        n.putNull(PeftAdapterConfig.DELTA_START_STEP);
      } else {
        n.put(PeftAdapterConfig.DELTA_START_STEP, delta.startStep());
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
   * A DELTA_LORA file's λ and K: a checkpoint's low-rank state when it names delta_update_ratio,
   * else an earlier version's adapter with its dense ΔW.
   */
  private static DeltaLoraParams deltaLora(Path file, JsonNode root) {
    JsonNode ratio = root.get(PeftAdapterConfig.DELTA_UPDATE_RATIO);
    if (ratio == null) {
      return DeltaLoraParams.DENSE;
    }
    JsonNode k = root.get(PeftAdapterConfig.DELTA_START_STEP);
    if (!ratio.isNumber()) {
      throw PeftAdapterConfig.bad(
          file, PeftAdapterConfig.DELTA_UPDATE_RATIO, "is " + ratio + "; expected a number >= 0");
    }
    if (k != null && !k.isNull() && !(k.isIntegralNumber() && k.canConvertToInt())) {
      throw PeftAdapterConfig.bad(
          file,
          PeftAdapterConfig.DELTA_START_STEP,
          "is " + k + "; expected an integer >= 0 or null");
    }
    try {
      return new DeltaLoraParams(
          ratio.doubleValue(),
          k == null || k.isNull() ? DeltaLoraParams.AUTO : k.intValue(),
          false);
    } catch (IllegalArgumentException e) {
      throw PeftAdapterConfig.bad(file, PeftAdapterConfig.DELTA_UPDATE_RATIO, e.getMessage());
    }
  }
}
