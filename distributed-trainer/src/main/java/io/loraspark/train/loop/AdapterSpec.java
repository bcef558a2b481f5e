package io.loraspark.train.loop;

import io.loraspark.train.lora.LoraConfig;

/**
 * One adapter to train: its id (unique in a run), its shape and how it is trained.
 *
 * @param id adapter id, used in file names: letters, digits, '-', '_', '.'
 */
public record AdapterSpec(String id, LoraConfig lora, TrainConfig train)
    implements java.io.Serializable {
  public AdapterSpec {
    io.loraspark.train.model.ModelConfig.require(
        id != null && id.matches("[A-Za-z0-9][A-Za-z0-9._-]{0,127}"),
        "adapter id '%s' must be 1-128 letters, digits, '.', '_' or '-'",
        id);
  }
}
