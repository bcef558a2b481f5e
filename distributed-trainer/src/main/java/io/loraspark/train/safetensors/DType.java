package io.loraspark.train.safetensors;

/**
 * The tensor element types this package reads and writes; safetensors spells them F32, F16, BF16.
 */
public enum DType {
  /** IEEE 754 binary32. */
  F32(4),
  /** IEEE 754 binary16 (half precision). */
  F16(2),
  /** bfloat16: the upper 16 bits of a binary32. */
  BF16(2);

  private final int bytes;

  DType(int bytes) {
    this.bytes = bytes;
  }

  /** Size of one element in bytes. */
  public int bytes() {
    return bytes;
  }

  /**
   * Parses a safetensors dtype string, exactly as spelled in the header (case-sensitive).
   *
   * @throws IllegalArgumentException for any other dtype (F64, I32, ...), listing the supported
   *     ones
   */
  public static DType parse(String s) {
    for (DType d : values()) {
      if (d.name().equals(s)) {
        return d;
      }
    }
    throw new IllegalArgumentException(
        "unsupported dtype '" + s + "': only F32, F16 and BF16 are supported");
  }
}
