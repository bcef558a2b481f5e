package io.loraspark.train.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.Set;

/**
 * One {@code peft_type}'s {@code adapter_config.json}: the keys PEFT writes for it and how they are
 * read back. {@link PeftAdapterConfig} picks the codec by the file's peft_type (reading) or the
 * adapter's method (writing), and checks the keys every type shares first.
 */
interface PeftCodec {

  /**
   * The config's keys, unsorted.
   *
   * @param baseModel base_model_name_or_path; null writes JSON null
   * @param allocator AdaLoRA's allocator (its rank pattern and total step), or null
   */
  ObjectNode render(LoraConfig config, String baseModel, RankAllocator allocator);

  /**
   * The config of a file of this type, validated.
   *
   * @throws IllegalArgumentException naming the file and key
   */
  LoraConfig parse(Path file, JsonNode root);

  /**
   * Top-level keys whose values keep their order when the file is written sorted: a pattern's order
   * is its meaning (first match wins).
   */
  default Set<String> keepOrder() {
    return Set.of("rank_pattern", "alpha_pattern");
  }
}
