package io.loraspark.train.decode;

import java.util.List;

/**
 * What a request's rows add to the frozen projections: no adapter (the base), one adapter, or the
 * weighted sum of several ({@code Σ_k w_k ΔW_k}, exactly: each branch is applied with its weight,
 * never an average of A and B apart). Only additive methods compose; a DoRA or PiSSA adapter must
 * be alone.
 *
 * @param adapters the adapters, applied in this order
 * @param weights each adapter's weight (the per-request scale), finite
 */
public record AdapterMix(List<DecodeAdapter> adapters, float[] weights) {
  /** The base model alone. */
  public static final AdapterMix NONE = new AdapterMix(List.of(), new float[0]);

  public AdapterMix {
    adapters = List.copyOf(adapters);
    weights = weights.clone();
    if (adapters.size() != weights.length) {
      throw new IllegalArgumentException(
          adapters.size() + " adapters but " + weights.length + " weights");
    }
    for (int k = 0; k < weights.length; k++) {
      if (!Float.isFinite(weights[k])) {
        throw new IllegalArgumentException(
            "adapter '"
                + adapters.get(k).name()
                + "': weight must be finite but was "
                + weights[k]);
      }
    }
    if (adapters.size() > 1) {
      for (DecodeAdapter a : adapters) {
        if (!a.additive()) {
          throw new IllegalArgumentException(
              "adapter '"
                  + a.name()
                  + "' is "
                  + a.method().key()
                  + ", whose update does not add to others'; compose only LoRA, LoRA-FA, VeRA,"
                  + " AdaLoRA and Delta-LoRA adapters, or use it alone");
        }
      }
    }
  }

  /** One adapter at weight 1. */
  public static AdapterMix of(DecodeAdapter adapter) {
    return new AdapterMix(List.of(adapter), new float[] {1f});
  }
}
