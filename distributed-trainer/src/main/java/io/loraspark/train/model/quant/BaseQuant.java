package io.loraspark.train.model.quant;

import java.util.Arrays;
import java.util.Locale;

/**
 * How the frozen base's projection weights are stored: the value of {@code train --base-quant} and
 * of a run config's {@code base_quant}.
 */
public enum BaseQuant {
  /** float32, as loaded. */
  NONE("none"),
  /** int8 codes with one symmetric absmax scale per output channel (row): {@link Int8Matrix}. */
  INT8("int8"),
  /** 4-bit NormalFloat codes in blocks of 64 with double-quantised scales: {@link Nf4Matrix}. */
  NF4("nf4");

  private final String key;

  BaseQuant(String key) {
    this.key = key;
  }

  /** The name users write. */
  public String key() {
    return key;
  }

  /** Stores a row-major [rows, cols] float32 matrix this way (not for {@link #NONE}). */
  public QuantizedMatrix quantize(float[] w, int rows, int cols) {
    return switch (this) {
      case INT8 -> Int8Matrix.quantize(w, rows, cols);
      case NF4 -> Nf4Matrix.quantize(w, rows, cols, true);
      case NONE -> throw new IllegalStateException("base_quant none keeps float32 weights");
    };
  }

  /**
   * The mode named {@code name} (case-insensitive).
   *
   * @throws IllegalArgumentException naming the valid modes
   */
  public static BaseQuant parse(String name) {
    String n = name == null ? "" : name.trim().toLowerCase(Locale.ROOT);
    for (BaseQuant q : values()) {
      if (q.key.equals(n)) {
        return q;
      }
    }
    throw new IllegalArgumentException(
        "unknown base_quant '" + name + "'; valid: " + String.join(", ", keys()));
  }

  /** Every mode's name, in declaration order. */
  public static String[] keys() {
    return Arrays.stream(values()).map(BaseQuant::key).toArray(String[]::new);
  }
}
