package io.loraspark.train.lora;

import java.util.Arrays;
import java.util.Locale;

/**
 * The adapter methods of the LoRA family this engine trains, each naming its {@link LoraVariant}
 * strategy: the registry that a sweep's {@code method} key and {@code train --method} resolve once,
 * so no engine code branches on a method name.
 */
public enum LoraMethod {
  /**
   * Plain LoRA (Hu et al. 2021, arXiv:2106.09685): the inline default path of {@link FusedLora}.
   */
  LORA("lora", LoraVariant.PLAIN),
  /** LoRA-FA (Zhang et al. 2023, arXiv:2308.03303): A frozen at its random init, only B trains. */
  LORA_FA("lora-fa", new LoraFaVariant()),
  /**
   * DoRA (Liu et al. 2024, arXiv:2402.09353): a trained magnitude times the normalised direction.
   */
  DORA("dora", new DoraVariant()),
  /**
   * PiSSA (Meng et al. 2024, arXiv:2404.02948): A, B from W's top-r SVD, trained on the residual.
   */
  PISSA("pissa", new PissaVariant()),
  /**
   * Delta-LoRA (Zi et al. 2023, arXiv:2309.02411): the frozen weight also moves by λ × the change
   * of s·B·A from step K, kept in low-rank form with a rank-r snapshot of A and B.
   */
  DELTA_LORA("delta-lora", new DeltaLoraVariant()),
  /**
   * VeRA (Kopiczko et al. 2023, arXiv:2310.11454): frozen random A, B shared by every layer, only
   * the vectors λ_d [r], λ_b [out] train; {@code rank} is VeRA's r (PEFT's default 256).
   */
  VERA("vera", new VeraVariant()),
  /**
   * AdaLoRA (Zhang et al. 2023, arXiv:2303.10512): SVD-form P Λ Q pruned by importance from init_r
   * = ⌈1.5·rank⌉ to {@code rank} (PEFT's target_r) per module on average.
   */
  ADALORA("adalora", new AdaLoraVariant());

  private final String key;
  private final LoraVariant variant;

  LoraMethod(String key, LoraVariant variant) {
    this.key = key;
    this.variant = variant;
  }

  /** The name users write: {@code lora}, {@code lora-fa}, {@code dora}, ... */
  public String key() {
    return key;
  }

  /** The strategy that implements this method's branch, parameters and merge. */
  public LoraVariant variant() {
    return variant;
  }

  /**
   * The method named {@code name} (case-insensitive).
   *
   * @throws IllegalArgumentException naming the valid methods
   */
  public static LoraMethod parse(String name) {
    String n = name == null ? "" : name.trim().toLowerCase(Locale.ROOT);
    for (LoraMethod m : values()) {
      if (m.key.equals(n)) {
        return m;
      }
    }
    throw new IllegalArgumentException(
        "unknown method '" + name + "'; valid methods: " + String.join(", ", keys()));
  }

  /** Every method's name, in declaration order. */
  public static String[] keys() {
    return Arrays.stream(values()).map(LoraMethod::key).toArray(String[]::new);
  }
}
