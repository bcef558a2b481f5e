package io.loraspark.train.loop;

import io.loraspark.train.lora.AdapterParent;
import io.loraspark.train.lora.LoraConfig;

/**
 * One adapter to train: its id (unique in a run), its shape, how it is trained and the frozen
 * parent it trains on.
 *
 * @param id adapter id, used in file names: letters, digits, '-', '_', '.'
 * @param parent the frozen parent adapter (with its content hash) whose chain the adapter trains on
 *     top of, or null for a root adapter on the bare base model; a child's method may not read W
 *     itself (DoRA, PiSSA), since its W is the chain's
 */
public record AdapterSpec(String id, LoraConfig lora, TrainConfig train, AdapterParent parent)
    implements java.io.Serializable {
  public AdapterSpec {
    io.loraspark.train.model.ModelConfig.require(
        id != null && id.matches("[A-Za-z0-9][A-Za-z0-9._-]{0,127}"),
        "adapter id '%s' must be 1-128 letters, digits, '.', '_' or '-'",
        id);
    io.loraspark.train.model.ModelConfig.require(
        parent == null || !lora.method().variant().needsBase(),
        "adapter %s: method %s reads W itself and cannot train on a parent chain; use lora,"
            + " lora-fa, vera, adalora or delta-lora for a child",
        id,
        lora.method().key());
  }

  /** A root adapter (no parent). */
  public AdapterSpec(String id, LoraConfig lora, TrainConfig train) {
    this(id, lora, train, null);
  }

  /** This spec under another id (a replica's), parent kept. */
  public AdapterSpec withId(String newId) {
    return new AdapterSpec(newId, lora, train, parent);
  }
}
