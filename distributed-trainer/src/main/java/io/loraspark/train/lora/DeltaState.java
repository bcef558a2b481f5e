package io.loraspark.train.lora;

/**
 * Delta-LoRA's state on one module ({@link DeltaLoraVariant}).
 *
 * @param snapshot the frozen branch over the snapshot (A_K [r, in], B_K [out, r]), switched on with
 *     c = −λ once step K has been taken
 */
public record DeltaState(FrozenBranch snapshot) implements ModuleState {

  /** The checkpoint name of A_K. */
  public static final String SNAPSHOT_A = "delta_lora_A_K";

  /** The checkpoint name of B_K. */
  public static final String SNAPSHOT_B = "delta_lora_B_K";
}
