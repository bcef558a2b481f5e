package io.loraspark.train.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;

/** {@code peft_type} VERA (PEFT's VeraConfig). */
final class VeraCodec implements PeftCodec {
  static final VeraCodec INSTANCE = new VeraCodec();

  private VeraCodec() {}

  @Override
  public ObjectNode render(LoraConfig config, String baseModel, RankAllocator allocator) {
    return vera(config, baseModel);
  }

  @Override
  public LoraConfig parse(Path file, JsonNode root) {
    return parseVera(file, root);
  }

  /** PEFT's VeraConfig, with the projections always saved ({@code save_projection: true}). */
  private static ObjectNode vera(LoraConfig config, String baseModel) {
    ObjectNode n = PeftJson.WRITER.createObjectNode();
    n.putNull("auto_mapping");
    n.put("base_model_name_or_path", baseModel);
    n.put("bias", "none");
    n.put("d_initial", VeraVariant.D_INITIAL);
    n.put("fan_in_fan_out", false);
    n.put("inference_mode", true);
    n.put("init_weights", true);
    n.putNull("modules_to_save");
    n.put("peft_type", PeftAdapterConfig.VERA_TYPE);
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
   * A VeraConfig: r, target_modules and vera_dropout shape the adapter; d_initial and
   * projection_prng_key only seed a fresh one; save_projection must not be false, since PEFT then
   * regenerates vera_A/vera_B with torch's generator, which this engine cannot reproduce.
   */
  private static LoraConfig parseVera(Path file, JsonNode root) {
    JsonNode save = root.get("save_projection");
    if (save != null && !save.isNull() && !(save.isBoolean() && save.booleanValue())) {
      throw PeftAdapterConfig.bad(
          file,
          "save_projection",
          "is "
              + save
              + "; the adapter must hold vera_A and vera_B (torch's generator behind"
              + " projection_prng_key cannot be reproduced here); re-save with"
              + " save_projection=True");
    }
    int rank = PeftJson.rank(file, root);
    double dropout = PeftJson.dropout(file, root, "vera_dropout");
    PeftModuleKeys.Parsed t = PeftModuleKeys.parse(file, root, false, false);
    return new LoraConfig(rank, rank, dropout, t.targets(), false, LoraMethod.VERA, t.selection());
  }
}
