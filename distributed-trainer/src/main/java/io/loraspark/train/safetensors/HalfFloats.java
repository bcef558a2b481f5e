package io.loraspark.train.safetensors;

/**
 * Bit-exact conversions between float32 and the 16-bit formats. Widening (16 to 32 bits) is exact
 * for every input; narrowing rounds to nearest, ties to even, overflowing to infinity. NaN stays
 * NaN (quiet, sign and upper payload bits kept).
 */
public final class HalfFloats {

  private HalfFloats() {}

  /** Widens IEEE binary16 bits to the float of exactly the same value (subnormals, ±inf, NaN). */
  public static float f16ToFloat(short half) {
    int h = half & 0xffff;
    int sign = (h & 0x8000) << 16;
    int exp = (h >>> 10) & 0x1f;
    int mant = h & 0x3ff;
    if (exp == 0x1f) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
    }
    if (exp == 0) {
      // zero or subnormal: mant * 2^-24, exact in float32
      float v = mant * 0x1p-24f;
      return sign == 0 ? v : -v;
    }
    return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
  }

  /** Narrows a float to IEEE binary16 bits, rounding to nearest even. */
  public static short floatToF16(float f) {
    int bits = Float.floatToRawIntBits(f);
    int sign = (bits >>> 16) & 0x8000;
    int exp = (bits >>> 23) & 0xff;
    int mant = bits & 0x7fffff;
    if (exp == 0xff) {
      return (short) (mant == 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13));
    }
    int e = exp - 112; // binary16 biased exponent
    if (e >= 0x1f) {
      return (short) (sign | 0x7c00);
    }
    if (e <= 0) {
      if (e < -10) {
        return (short) sign; // below half the smallest subnormal: rounds to zero
      }
      return (short) (sign | roundShift(mant | 0x800000, 14 - e));
    }
    // carry out of the mantissa correctly bumps the exponent (and 65520+ becomes inf)
    return (short) (sign | roundShift((e << 23) | mant, 13));
  }

  /** Widens bfloat16 bits to float: they are its upper 16 bits, so this is exact. */
  public static float bf16ToFloat(short bf16) {
    return Float.intBitsToFloat((bf16 & 0xffff) << 16);
  }

  /** Narrows a float to bfloat16 bits, rounding to nearest even. */
  public static short floatToBf16(float f) {
    int bits = Float.floatToRawIntBits(f);
    if ((bits & 0x7f800000) == 0x7f800000 && (bits & 0x7fffff) != 0) {
      return (short)
          ((bits >>> 16) | 0x40); // NaN: keep it NaN even if the payload is in the low bits
    }
    return (short) roundShift(bits, 16);
  }

  /** {@code value >>> shift} (value read as unsigned), rounded to nearest with ties to even. */
  private static int roundShift(int value, int shift) {
    int kept = value >>> shift;
    int rest = value & ((1 << shift) - 1);
    int half = 1 << (shift - 1);
    if (rest > half || (rest == half && (kept & 1) != 0)) {
      kept++;
    }
    return kept;
  }
}
